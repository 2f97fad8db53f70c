/**
 * What the inspector keeps of headers and bodies, with the secrets out
 * (the same names as the log: src/redact.ts, plus log.redact): the values
 * of Authorization, cookies and other secret headers; secret query values
 * in URLs (the path, Location, Referer); and in a kept text body, the
 * values of form, JSON and XML fields named as secrets (a Client Tracker
 * `<key>`, a JSON "password"). Pure functions.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { REDACTED, isSecretField, isSecretHeader, redactQuery, redactUrl } from '../redact.js';
import type { XmlIssue } from '../xml/kinds.js';
import type { InspectEntry, KeptBody, RawBody, RawExchange } from './entry.js';

const MAX_ISSUE_TEXT = 300;

/** Headers whose value is a URL that may carry a secret query. */
const URL_HEADERS = new Set(['location', 'referer', 'content-location']);

function keepValue(name: string, value: string): string {
  if (isSecretHeader(name)) return REDACTED;
  return URL_HEADERS.has(name.toLowerCase()) ? redactUrl(value) : value;
}

/** A flat name/value list (as on the wire) as redacted pairs. */
export function keepHeaders(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], keepValue(flat[i], flat[i + 1])]);
  return out;
}

/** Node's outgoing headers (res.getHeaders()) as redacted pairs. */
export function keepHeaderObject(headers: OutgoingHttpHeaders): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push([name, keepValue(name, String(v))]);
  }
  return out;
}

const TEXT_TYPE = /^(?:text\/|application\/(?:[\w.+-]*\+)?(?:json|xml|x-www-form-urlencoded|javascript|ecmascript|graphql)\b|[\w.-]+\/[\w.-]*\+(?:json|xml)\b)/i;

/** A JSON text with the values of secret keys replaced (whole documents re-indented; a cut one by pattern). */
export function redactJson(text: string): string {
  try {
    const value: unknown = JSON.parse(text);
    return JSON.stringify(value, (key, v: unknown) => (key !== '' && isSecretField(key) ? REDACTED : v), 2);
  } catch {
    // A cut (or broken) document: every `"name": value` whose name is secret.
    return text.replace(/("((?:[^"\\]|\\.)*)"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]*)/g, (all, lead: string, name: string) =>
      isSecretField(unescapeJson(name)) ? `${lead}"${REDACTED}"` : all);
  }
}

function unescapeJson(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s;
  }
}

/** An XML text with the content of elements (and values of attributes) named as secrets replaced, also when cut. */
export function redactXml(text: string): string {
  return text
    // An element's content: text, CDATA sections and comments (a CT key may come as <key><![CDATA[...]]></key>), also when cut.
    .replace(/(<(?:[\w.-]+:)?([\w.-]+)(?:\s[^>]*)?>)((?:<!\[CDATA\[[\s\S]*?(?:\]\]>|$)|<!--[\s\S]*?(?:-->|$)|[^<])*)/g, (all, open: string, name: string, content: string) =>
      isSecretField(name) && content.length > 0 && !open.endsWith('/>') ? `${open}${REDACTED}` : all)
    .replace(/(\s(?:[\w.-]+:)?([\w.-]+)\s*=\s*)("[^"]*"?|'[^']*'?)/g, (all, lead: string, name: string) =>
      isSecretField(name) ? `${lead}"${REDACTED}"` : all);
}

/** A text body with secret fields redacted, by content type (or by its first character when the type says nothing). */
export function redactBodyText(text: string, contentType: string | undefined): string {
  const type = (contentType ?? '').toLowerCase();
  const start = text.trimStart()[0];
  if (type.includes('x-www-form-urlencoded')) return redactQuery(text);
  if (type.includes('json') || ((start === '{' || start === '[') && !type.includes('xml'))) return redactJson(text);
  if (type.includes('xml') || start === '<') return redactXml(text);
  // Plain text: a form-like or JSON-like secret inside is still caught.
  return redactXml(redactJson(/^[^\s=&]+=[^\s&]*(&[^\s=&]+=[^\s&]*)*$/.test(text.trim()) ? redactQuery(text) : text));
}

/**
 * Collects the first `limit` bytes of a body (copies: a chunk may be a view
 * of a larger buffer that must not be held).
 */
export class BodyTap {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;

  constructor(private readonly limit: number) {}

  readonly add = (chunk: Buffer | string | Uint8Array): void => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.total += buf.length;
    const room = this.limit - this.kept;
    if (room <= 0) return;
    const part = Buffer.from(buf.subarray(0, room));
    this.chunks.push(part);
    this.kept += part.length;
  };

  /** The whole body, if it fit. */
  whole(): Buffer | undefined {
    return this.total <= this.limit ? Buffer.concat(this.chunks, this.kept) : undefined;
  }

  /** What the inspector shows of it. */
  shown(contentType: string | undefined, contentEncoding: string | undefined): KeptBody {
    return keepBody(Buffer.concat(this.chunks, this.kept), this.total, contentType, contentEncoding);
  }

  /** The bytes kept, for toEntry to show later. */
  raw(contentType: string | undefined, contentEncoding: string | undefined): RawBody {
    return { head: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.kept), total: this.total, contentType, contentEncoding };
  }
}

/** The kept form of a body's first bytes `head` (of `total`): redacted text, or a note why there is none. */
export function keepBody(head: Buffer, total: number, contentType: string | undefined, contentEncoding: string | undefined): KeptBody {
  const body: KeptBody = { bytes: total };
  if (total === 0) return body;
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    body.note = `compressed (${encoding.slice(0, 20)})`;
    return body;
  }
  const type = (contentType ?? '').split(';')[0].trim();
  if (type && !TEXT_TYPE.test(type)) {
    body.note = `not text (${type.slice(0, 60)})`;
    return body;
  }
  const text = head.toString('utf8');
  if (!type && /[\u0000-\u0008\u000e-\u001f]/.test(text)) {
    body.note = 'not text';
    return body;
  }
  body.text = redactBodyText(text, type);
  if (head.length < total) body.truncated = true;
  return body;
}

/** An XML problem for the inspector: where and what; where only, for an element named as a secret (its text may quote the value). */
export function issueText(issue: XmlIssue): string {
  const where = `line ${issue.line}${issue.element ? `, element <${issue.element}>` : ''}`;
  if (issue.element && isSecretField(issue.element)) return where;
  const text = `${where}: ${issue.message}`;
  return text.length > MAX_ISSUE_TEXT ? `${text.slice(0, MAX_ISSUE_TEXT - 1)}…` : text;
}


const shownBody = (b: RawBody): KeptBody => keepBody(b.head, b.total, b.contentType, b.contentEncoding);

/** What is shown of a recorded exchange: every header, URL and body redacted. */
export function toEntry(raw: RawExchange, seq: number): InspectEntry {
  const e: InspectEntry = {
    seq,
    side: raw.side,
    at: new Date(raw.startedAt).toISOString(),
    requestId: raw.requestId,
    tunnel: raw.tunnel,
    kind: raw.kind,
    method: raw.method,
    path: redactUrl(raw.target),
    status: raw.status,
    durationMs: raw.durationMs,
    bytesIn: raw.bytesIn,
    bytesOut: raw.bytesOut,
    requestHeaders: keepHeaders(raw.requestHeaders),
    responseHeaders: keepHeaders(raw.responseHeaders),
  };
  if (raw.firstByteMs !== undefined) e.firstByteMs = raw.firstByteMs;
  if (raw.code !== undefined) e.code = raw.code;
  if (raw.servedBy !== undefined) e.servedBy = raw.servedBy;
  if (raw.requestBody) e.requestBody = shownBody(raw.requestBody);
  if (raw.responseBody) e.responseBody = shownBody(raw.responseBody);
  if (raw.ct) e.ct = raw.ct;
  if (raw.replayable !== undefined) e.replayable = raw.replayable;
  if (raw.replayOf !== undefined) e.replayOf = raw.replayOf;
  return e;
}
