/**
 * The two heads of an exchange (docs/wire-protocol.md, "Exchanges"): the
 * request head in the OPEN frame and the response head in the REPLY frame.
 * Headers travel as raw pairs, in order, with duplicates and their original
 * case: `[name, value, name, value, ...]` (Set-Cookie twice stays twice).
 *
 * A head is JSON from the other process, so it is checked here before
 * anything reads it: shape, sizes, HTTP token and field-value syntax. What
 * the head asks for (which tunnel, which path) is the receiver's decision.
 */
import { isTunnelName } from '../protocol.js';

/** What an exchange carries: an HTTP request to a tunnel's target, a WebSocket upgrade to it, or a provider → Client Tracker message. */
export type ExchangeKind = 'http' | 'upgrade' | 'egress';
export const EXCHANGE_KINDS: readonly ExchangeKind[] = ['http', 'upgrade', 'egress'];

export interface RequestHead {
  kind: ExchangeKind;
  tunnel: string;
  method: string;
  /** Path and query, byte for byte as the caller sent them (inside the tunnel); starts with "/". */
  target: string;
  /** Raw header pairs in order: [name, value, name, value, ...]. */
  headers: string[];
  /** The relay's request id (agent → relay egress: the agent's). */
  requestId: string;
}

export interface ResponseHead {
  status: number;
  /** The reason phrase, when it is not the standard one. */
  statusText?: string;
  headers: string[];
}

/** RFC 9110 token: method and header names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value: visible ASCII, space, tab and obs-text bytes (RFC 9110 §5.5); what Node and undici accept. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** The request target: origin-form, no whitespace or control characters. */
const TARGET = /^\/[\x21-\x7e\x80-\xff]*$/;
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_TARGET = 64 * 1024;
const MAX_PAIRS = 10_000;
const MAX_STATUS_TEXT = 128;

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

function fail<T>(problem: string): Checked<T> {
  return { ok: false, problem };
}

/** The header pairs if they are well-formed, else why not. */
function checkHeaders(value: unknown): Checked<string[]> {
  if (!Array.isArray(value) || value.length % 2 !== 0 || value.length > 2 * MAX_PAIRS) {
    return fail('headers is not a list of name/value pairs');
  }
  for (let i = 0; i < value.length; i += 2) {
    const name: unknown = value[i];
    const v: unknown = value[i + 1];
    if (typeof name !== 'string' || !TOKEN.test(name)) return fail(`header ${i / 2 + 1} has an invalid name`);
    if (typeof v !== 'string' || BAD_VALUE.test(v)) return fail(`header ${name.slice(0, 64)} has an invalid value`);
  }
  return { ok: true, value: value as string[] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks an OPEN frame's JSON as a request head. */
export function checkRequestHead(value: unknown): Checked<RequestHead> {
  if (!isRecord(value)) return fail('the request head is not a JSON object');
  const { kind, tunnel, method, target, headers, requestId } = value;
  if (typeof kind !== 'string' || !EXCHANGE_KINDS.includes(kind as ExchangeKind)) return fail(`unknown exchange kind ${JSON.stringify(kind)?.slice(0, 40)}`);
  if (typeof tunnel !== 'string' || !isTunnelName(tunnel)) return fail('the tunnel name is not a valid tunnel name');
  if (typeof method !== 'string' || method.length > 32 || !TOKEN.test(method)) return fail('the method is not an HTTP token');
  if (typeof target !== 'string' || target.length > MAX_TARGET || !TARGET.test(target)) return fail('the request target is not a path starting with "/"');
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return fail('the request id is missing or malformed');
  const h = checkHeaders(headers);
  if (!h.ok) return h;
  return { ok: true, value: { kind: kind as ExchangeKind, tunnel, method, target, headers: h.value, requestId } };
}

/** Checks a REPLY frame's JSON as a response head. Status 1xx is allowed only as 101 (an upgrade). */
export function checkResponseHead(value: unknown): Checked<ResponseHead> {
  if (!isRecord(value)) return fail('the response head is not a JSON object');
  const { status, statusText, headers } = value;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 101 || status > 599 || (status < 200 && status !== 101)) {
    return fail(`the status ${JSON.stringify(status)?.slice(0, 20)} is not a final HTTP status`);
  }
  if (statusText !== undefined && (typeof statusText !== 'string' || statusText.length > MAX_STATUS_TEXT || BAD_VALUE.test(statusText))) {
    return fail('the reason phrase is malformed');
  }
  const h = checkHeaders(headers);
  if (!h.ok) return h;
  const head: ResponseHead = { status, headers: h.value };
  if (typeof statusText === 'string') head.statusText = statusText;
  return { ok: true, value: head };
}
