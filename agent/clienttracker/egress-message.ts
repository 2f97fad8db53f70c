/**
 * Checking a provider's message before it leaves the intranet: the body must
 * be the Client Tracker message its URL names, valid against its schema, with
 * no DOCTYPE. An invalid message is answered here and never forwarded, so
 * the provider's developer sees exactly what is wrong (line, element,
 * expectation) instead of a vague refusal from Client Tracker.
 *
 * This module loads libxml2-wasm (src/xml/validate.ts): import it only when
 * egress is configured.
 */
import { shortHash } from '../../src/redact.js';
import { EGRESS_MESSAGES, type EgressMessageName } from '../../src/xml/egress-messages.js';
import { CT_NAMESPACE, XmlInvalidError, type XmlIssue } from '../../src/xml/kinds.js';
import { parseIsInRequest, parsePushResource } from '../../src/xml/messages-rpc.js';
import { prepareXml } from '../../src/xml/prepare.js';
import { scanElements } from '../../src/xml/scan.js';
import { loadSchemas, validateXml } from '../../src/xml/validate.js';

export type MessageCheck =
  | { ok: true; login: string | undefined; ctid: string | undefined }
  | { ok: false; issues: XmlIssue[] };

/** Compiles the schemas now, so a broken install fails at startup and the first message is not slow. */
export function prepareSchemas(): void {
  loadSchemas();
}

/** Local name, namespace and line of the root element; undefined if the document has none or cannot be scanned. */
function rootOf(body: Buffer): { name: string; namespace: string | null; line: number } | undefined {
  try {
    const { text, lineOffset } = prepareXml(body);
    let found: { name: string; namespace: string | null; line: number } | undefined;
    scanElements(text, () => undefined, (element) => {
      const tagStart = text.lastIndexOf('<', element.contentStart - 1);
      const line = lineOffset + (text.slice(0, tagStart).match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
      found = { name: element.local, namespace: element.namespace, line };
      return false;
    });
    return found;
  } catch {
    return undefined; // validateXml reports why, with a line
  }
}

/**
 * add_resource takes only <pushResource> and remove_resource only
 * <pushResourceRemove> (one schema holds both): say so first, since the
 * schema's own complaints would not explain the mix-up.
 */
function wrongRoot(name: EgressMessageName, body: Buffer): XmlIssue | undefined {
  const spec = EGRESS_MESSAGES[name];
  if (spec.other === undefined) return undefined;
  const root = rootOf(body);
  if (!root || root.namespace !== CT_NAMESPACE || root.name === spec.root) return undefined;
  const other = EGRESS_MESSAGES[spec.other];
  if (root.name !== other.root) return undefined; // validateXml names the expected roots
  return {
    line: root.line,
    element: root.name,
    message: `${name} expects the root element <${spec.root}>, found <${root.name}>; <${root.name}> is posted to ${spec.other}`,
  };
}

/** The login (as a short hash) and ctid of a valid message, for the log line; never the key. */
function logFields(name: EgressMessageName, body: Buffer): { login: string | undefined; ctid: string | undefined } {
  try {
    const m = name === 'is_in_request' ? parseIsInRequest(body) : parsePushResource(body);
    return { login: shortHash(m.login), ctid: m.ctid.slice(0, 50) };
  } catch (err) {
    if (err instanceof XmlInvalidError) return { login: undefined, ctid: undefined };
    throw err;
  }
}

/** Validates `body` as the message `name`; on success returns what the log line may show. */
export function checkMessage(name: EgressMessageName, body: Buffer): MessageCheck {
  const rootIssue = wrongRoot(name, body);
  if (rootIssue) return { ok: false, issues: [rootIssue] };
  const result = validateXml(EGRESS_MESSAGES[name].kind, body);
  if (!result.ok) return { ok: false, issues: result.errors };
  return { ok: true, ...logFields(name, body) };
}
