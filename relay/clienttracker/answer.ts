/**
 * What the relay does with a provider's answer on a clienttracker tunnel,
 * as a pure function of the bytes: which message it is, the registration
 * rewrite, and validation in the tunnel's mode.
 *
 * - `off`: only the rewrite; anything else passes through untouched.
 * - `report`: the provider's bytes pass through (apart from the rewrite);
 *   every problem is returned as a finding for the caller to log and count.
 * - `enforce`: a finding turns the answer into a CTB_UPSTREAM_INVALID error.
 *
 * Either way the https-namespace quirk (docs/client-tracker-protocol.md, "Conventions") passes: a document
 * whose only fault is `xmlns="https://clienttracker.cioc.ca/schema/"` is
 * reported, never replaced. A DOCTYPE is never handed to libxml2 (prepare.ts
 * refuses it first) and never passed on in enforce mode.
 *
 * Nothing is re-serialised: the rewrite splices the URL elements' text and
 * validation reads the bytes that will be sent.
 */
import type { CtValidationMode } from '../../src/config/relay-tunnels.js';
import { detectMessage, type DetectedMessage } from '../../src/xml/detect.js';
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, XmlInvalidError, formatXmlIssues, type MessageKind, type XmlIssue } from '../../src/xml/kinds.js';
import { prepareXml } from '../../src/xml/prepare.js';
import { validateXml } from '../../src/xml/validate.js';
import { rewriteRegistrationUrls, type RegistrationRewrite } from './rewrite.js';

export interface AnswerInput {
  /** The provider's body, content encoding already undone. */
  body: Buffer;
  mode: CtValidationMode;
  /** Registration elements to rewrite. */
  rewrite: readonly string[];
  /** The tunnel's public URL. */
  publicBase: string;
}

export type FindingReason =
  /** Empty, HTML, JSON, not well-formed, not decodable. */
  | 'not-xml'
  /** Well-formed XML, but not a Client Tracker message (a foreign root such as XHTML's <html>). */
  | 'not-ct'
  | 'doctype'
  /** A Client Tracker message that violates its schema (or cannot be rewritten). */
  | 'schema'
  /** The https namespace quirk, otherwise valid: always passed through. */
  | 'namespace-quirk';

export interface Finding {
  reason: FindingReason;
  /** The message kind it was checked as, when known. */
  kind?: MessageKind;
  /** Where and what (line, element, message); never a key value. */
  issues: XmlIssue[];
  /** A short description for people, e.g. "an HTML page". */
  detail: string;
}

export interface AnswerOutcome {
  detected?: DetectedMessage;
  /** Set when the registration was rewritten: the bytes to send instead of the provider's. */
  body?: Buffer;
  rewrite?: RegistrationRewrite;
  /** Rewrite not attempted although the answer is a registration, and why. */
  rewriteSkipped?: string;
  findings: Finding[];
  /** Enforce mode: replace the answer with a CTB_UPSTREAM_INVALID error; `problem` names the violation (absent: "not XML"). */
  replace?: { problem?: string };
}

/** Response payload → kind, for a `<response>` root in no or a foreign namespace (so it can be validated and the namespace named). */
const PAYLOAD_KINDS: Record<string, MessageKind> = {
  resourceType: 'registration',
  resourceInfo: 'resourceInfo',
  taxonomy: 'resourceInfo',
  yes: 'isInResponse',
  no: 'isInResponse',
  success: 'pushResourceResponse',
};

const HTML = /^\s*<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])/i;
const JSON_START = /^\s*[[{]/;
const MAX_PROBLEM = 300;
const QUIRK_XMLNS = /(["'])https:\/\/clienttracker\.cioc\.ca\/schema\/\1/g;
/** Single-byte, ASCII-compatible encodings: latin1 decoding is byte-transparent for them. */
const SINGLE_BYTE = /^(?:iso-?8859-\d+|latin-?1|l1|windows-125\d|cp125\d|us-ascii|ascii)$/i;
const DECLARED_ENCODING = /^(?:\uFEFF|\u00EF\u00BB\u00BF)?[ \t\r\n]*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;

/** "line 4, element <id>: message", short enough for a CT user's screen. */
export function describeIssue(issue: XmlIssue): string {
  const s = formatXmlIssues([issue]);
  return s.length > MAX_PROBLEM ? `${s.slice(0, MAX_PROBLEM - 1)}…` : s;
}

function notXmlDetail(body: Buffer): string {
  if (body.length === 0) return 'an empty answer';
  const head = body.subarray(0, 512).toString('latin1').replace(/^\u00EF\u00BB\u00BF/, '');
  if (HTML.test(head)) return 'an HTML page';
  if (JSON_START.test(head)) return 'JSON';
  return 'not well-formed XML';
}

/** Text of the document for the rewrite, and how to turn it back into bytes. */
function decodeForRewrite(body: Buffer): { text: string; encoding: 'utf8' | 'latin1' } | { unsupported: string } {
  const head = body.subarray(0, 256).toString('latin1');
  const label = DECLARED_ENCODING.exec(head)?.[1];
  if (label === undefined || /^utf-?8$/i.test(label)) {
    try {
      // ignoreBOM: keep a BOM as U+FEFF, so it is written back as it came.
      return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body), encoding: 'utf8' };
    } catch {
      return { unsupported: 'the answer is not valid UTF-8' };
    }
  }
  if (SINGLE_BYTE.test(label)) return { text: body.toString('latin1'), encoding: 'latin1' };
  return { unsupported: `the answer is encoded as ${label.slice(0, 40)}` };
}

function validate(kind: MessageKind, body: Buffer, quirk: boolean): XmlIssue[] {
  let input: string | Buffer = body;
  if (quirk) {
    // Check everything but the namespace: validate with the right one put in.
    try {
      const { text, lineOffset } = prepareXml(body);
      input = '\n'.repeat(lineOffset) + text.replace(QUIRK_XMLNS, `$1${CT_NAMESPACE}$1`);
    } catch (err) {
      if (err instanceof XmlInvalidError) return [...err.issues];
      throw err;
    }
  }
  const result = validateXml(kind, input);
  return result.ok ? [] : result.errors.length ? result.errors : [{ line: 1, message: 'the document does not follow the schema' }];
}

export function processAnswer(input: AnswerInput): AnswerOutcome {
  const { body, mode } = input;
  const outcome: AnswerOutcome = { findings: [] };
  const enforce = mode === 'enforce';
  const refuse = (finding: Finding, problem?: string): AnswerOutcome => {
    outcome.findings.push(finding);
    if (enforce) outcome.replace = problem === undefined ? {} : { problem };
    return outcome;
  };

  let detected: DetectedMessage;
  try {
    detected = detectMessage(body);
  } catch (err) {
    if (!(err instanceof XmlInvalidError)) throw err;
    if (mode === 'off') return outcome;
    const detail = notXmlDetail(body);
    if (/<!(DOCTYPE|ENTITY)/i.test(err.message) && detail !== 'an HTML page') {
      const line = err.issues[0]?.line ?? 1;
      const issue: XmlIssue = { line, message: 'the answer contains a <!DOCTYPE> or <!ENTITY> declaration, which the bridge does not pass on' };
      return refuse({ reason: 'doctype', issues: [issue], detail: 'a DOCTYPE declaration' }, describeIssue(issue));
    }
    return refuse({ reason: 'not-xml', issues: [...err.issues], detail });
  }
  outcome.detected = detected;

  // Which schema to check against: the detected kind; a `<response>` in the wrong
  // (or no) namespace by its payload, so the issue names the namespace; anything
  // else rooted in `<response>` or in the Client Tracker namespace (an error
  // response, an empty or unknown payload, an unknown root) against the fetch
  // answer's schema, which every GET answer should be and whose message then
  // says what was expected. Only a foreign document (XHTML, RSS, ...) is left.
  const ctNamespace = detected.namespace === CT_NAMESPACE || detected.namespace === CT_NAMESPACE_HTTPS_QUIRK;
  const kind: MessageKind | undefined =
    detected.kind ??
    (detected.root === 'response' && detected.payload ? PAYLOAD_KINDS[detected.payload] : undefined) ??
    (detected.root === 'response' || ctNamespace ? 'resourceInfo' : undefined);

  let sent = body;
  let rewriteIssue: XmlIssue | undefined;
  if (kind === 'registration' && input.rewrite.length > 0) {
    const decoded = decodeForRewrite(body);
    if ('unsupported' in decoded) outcome.rewriteSkipped = decoded.unsupported;
    else {
      try {
        const rewrite = rewriteRegistrationUrls(decoded.text, input.rewrite, input.publicBase);
        outcome.rewrite = rewrite;
        if (rewrite.rewritten.length > 0) outcome.body = sent = Buffer.from(rewrite.xml, decoded.encoding);
      } catch (err) {
        if (!(err instanceof XmlInvalidError)) throw err;
        // Validation below usually names the same fault with its line; if not, this is the finding.
        outcome.rewriteSkipped = err.message;
        rewriteIssue = err.issues[0] ?? { line: 1, message: err.message };
      }
    }
  }
  if (mode === 'off') return outcome;

  if (!kind) {
    const issue: XmlIssue = { line: 1, element: detected.root, message: `<${detected.root}> is not a Client Tracker answer` };
    return refuse({ reason: 'not-ct', issues: [issue], detail: `a <${detected.root}> document` });
  }

  const issues = validate(kind, sent, detected.namespaceQuirk);
  if (issues.length > 0) return refuse({ reason: 'schema', kind, issues, detail: `a ${kind} answer that violates the schema` }, describeIssue(issues[0]));
  if (rewriteIssue) {
    return refuse({ reason: 'schema', kind, issues: [rewriteIssue], detail: 'a registration whose URLs cannot be rewritten' }, describeIssue(rewriteIssue));
  }
  if (detected.namespaceQuirk) {
    outcome.findings.push({
      reason: 'namespace-quirk',
      kind,
      issues: [{ line: 1, element: detected.root, message: `the namespace is the https form '${CT_NAMESPACE_HTTPS_QUIRK}' (a known provider quirk, passed through)` }],
      detail: 'the https namespace quirk',
    });
  }
  return outcome;
}
