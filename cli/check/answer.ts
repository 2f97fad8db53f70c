/**
 * Judging one HTTP answer the way Client Tracker's server would: status,
 * redirect, content type, "is this XML at all", schema validation (with the
 * https-namespace quirk reported as a warning), and the bridge's own error
 * answers.
 */
import { ERROR_HEADER } from '../../src/protocol.js';
import { detectMessage } from '../../src/xml/detect.js';
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, KIND_INFO, XmlInvalidError, type MessageKind } from '../../src/xml/kinds.js';
import { prepareXml } from '../../src/xml/prepare.js';
import { parseResponse } from '../../src/xml/response.js';
import { validateXml } from '../../src/xml/validate.js';
import { displayUrl, redactText } from './display.js';
import type { CheckItem, FetchedText, HttpExchange } from './types.js';

export interface JudgedAnswer {
  items: CheckItem[];
  request: HttpExchange;
  /** The body is XML worth parsing (it may still have failed validation). */
  parseable: boolean;
  /** The body (with the https-namespace quirk corrected), for the parsers. */
  input?: string | Buffer;
}

function header(res: FetchedText, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** First characters of a body, one line, for "it answered this instead". */
export function snippet(text: string, max = 100): string {
  const line = text.replace(/^\uFEFF/, '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** XML starts with '<' (after a BOM and blank space) and is not an HTML page. */
function looksLikeXml(body: Buffer): boolean {
  const head = body.subarray(0, 512).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  return head.startsWith('<') && !/^<(!doctype\s+html|html[\s>])/i.test(head);
}

const QUIRK_XMLNS = new RegExp(`(xmlns(?::[\\w.-]+)?\\s*=\\s*["'])${CT_NAMESPACE_HTTPS_QUIRK.replace(/[.]/g, '\\.')}(?=["'])`, 'g');

/** `body` as text with the https namespace written as the http one; lines stay where they were. */
function withoutQuirk(body: Buffer): string {
  const { text, lineOffset } = prepareXml(body);
  return '\n'.repeat(lineOffset) + text.replace(QUIRK_XMLNS, `$1${CT_NAMESPACE}`);
}

function validation(kind: MessageKind, input: string | Buffer, what: string): CheckItem {
  const schema = KIND_INFO[kind].schema;
  const result = validateXml(kind, input);
  if (result.ok) return { level: 'ok', text: `${what} conforms to ${schema}` };
  return {
    level: 'error',
    text: `${what} does not conform to ${schema}`,
    issues: result.errors.map((i) => ({ ...i, message: redactText(i.message) })),
  };
}

export const QUIRK_WARNING =
  `the root element uses the https namespace ${CT_NAMESPACE_HTTPS_QUIRK} (a provider quirk seen in the field) ` +
  `instead of ${CT_NAMESPACE}: Client Tracker in strict mode would reject this answer; ` +
  'a ctbridge clienttracker tunnel passes it through unchanged in `report` mode (clientTracker.validation: report, the default) and logs it';

/**
 * Judge `res` as the answer to a GET of `url` that should carry a `kind`
 * message (`what` names it for people: "the registration").
 */
export function judgeAnswer(kind: MessageKind, what: string, url: string, res: FetchedText): JudgedAnswer {
  const contentType = header(res, 'content-type');
  const request: HttpExchange = { url: displayUrl(url), status: res.status, bytes: res.body.length, ms: res.ms };
  if (contentType !== undefined) request.contentType = contentType;
  const items: CheckItem[] = [];
  const bridgeError = header(res, ERROR_HEADER);

  if (res.status >= 300 && res.status < 400) {
    const location = header(res, 'location');
    if (location !== undefined) request.location = displayUrl(location);
    items.push({
      level: 'error',
      text:
        `HTTP ${res.status}: a redirect${location ? ` to ${displayUrl(location)}` : ' (without a Location header)'}, not followed: ` +
        'Client Tracker calls the URL as registered; register the URL the redirect points to (through the relay, the redirect would also expose an intranet address)',
    });
    return { items, request, parseable: false };
  }
  if (bridgeError) {
    items.push({
      level: 'error',
      text: `the bridge answered instead of the provider (HTTP ${res.status}, ${bridgeError})${bodyError(res.body)}`,
    });
    return { items, request, parseable: false };
  }
  const statusOk = res.status >= 200 && res.status < 300;
  if (!statusOk) items.push({ level: 'error', text: `HTTP ${res.status}: Client Tracker expects HTTP 200` });
  else if (res.status !== 200) items.push({ level: 'warn', text: `HTTP ${res.status}: Client Tracker expects 200` });

  if (res.body.length === 0 || !looksLikeXml(res.body)) {
    const shown = res.body.length === 0 ? 'the body is empty' : `it starts with "${snippet(res.body.toString('utf8'))}"`;
    items.push({
      level: 'error',
      text: `the answer is not XML (HTTP ${res.status}, Content-Type ${contentType ?? 'missing'}): ${shown}`,
    });
    return { items, request, parseable: false };
  }
  if (!contentType) {
    items.push({ level: 'warn', text: 'no Content-Type header; send application/xml; charset=utf-8' });
  } else if (!/^\s*(application|text)\/([\w.+-]+\+)?xml\s*(;|$)/i.test(contentType)) {
    items.push({ level: 'warn', text: `Content-Type is "${contentType}"; send application/xml; charset=utf-8` });
  }

  let quirk = false;
  try {
    quirk = detectMessage(res.body).namespaceQuirk;
  } catch (err) {
    if (!(err instanceof XmlInvalidError)) throw err;
  }
  if (!quirk) {
    const item = validation(kind, res.body, what);
    items.push(item);
    return { items, request, parseable: item.level === 'ok' || wellFormed(res.body), input: res.body };
  }
  items.push({ level: 'warn', text: QUIRK_WARNING });
  const text = withoutQuirk(res.body);
  const item = validation(kind, text, `apart from the namespace, ${what}`);
  items.push(item);
  return { items, request, parseable: item.level === 'ok' || wellFormed(text), input: text };
}

function wellFormed(input: string | Buffer): boolean {
  try {
    parseResponse(input);
    return true;
  } catch {
    return false;
  }
}

/** ": <message>" from the bridge's XML (`<response><error>`) or JSON (`{"error":{"message"}}`) error body, else a snippet. */
function bodyError(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const json = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof json?.error?.message === 'string') return `: "${redactText(json.error.message)}"`;
  } catch {
    // not JSON
  }
  try {
    const parsed = parseResponse(body);
    if ('kind' in parsed) return `: "${redactText(parsed.error)}"`;
  } catch {
    // not a Client Tracker response
  }
  return body.length ? `: ${snippet(redactText(text), 200)}` : '';
}
