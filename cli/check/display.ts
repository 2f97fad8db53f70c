/**
 * URL helpers for `ctbridge check`: splitting URLs without re-encoding them
 * (`[ID]` must stay `[ID]`), telling relay tunnel URLs apart, and redacting
 * secrets in anything the check prints.
 */
import { redactUrl } from '../../src/redact.js';

/** The placeholders Client Tracker substitutes. */
export const PLACEHOLDERS = ['[ID]', '[IDS]', '[CTID]', '[LOGIN]', '[KEY]'] as const;

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#[\s\S]*)?$/;
const TUNNEL_PATH = /^\/t\/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?=[/?#]|$)/;

export interface SplitUrl {
  /** Normalised origin (lower-case scheme and host, default port dropped), e.g. http://intranet.example */
  origin: string;
  /** Path as written (never re-encoded), '' allowed. */
  path: string;
  /** Query including '?', or ''. */
  query: string;
  /** Everything after the authority, without the fragment: what goes on the request line. */
  rest: string;
}

/** An absolute http(s) URL split byte for byte; null for anything else. */
export function splitHttpUrl(url: string): SplitUrl | null {
  const m = ABSOLUTE.exec(url.trim());
  if (!m) return null;
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  let origin: string;
  try {
    const parsed = new URL(`${scheme}://${m[2] ?? ''}/`);
    if (parsed.username || parsed.password || !parsed.hostname) return null;
    origin = parsed.origin;
  } catch {
    return null;
  }
  const path = m[3] ?? '';
  const query = m[4] ?? '';
  return { origin, path, query, rest: (path || '/') + query };
}

/** The relay tunnel a URL goes through (`https://relay/t/<tunnel>/...`), or null. */
export function relayOf(url: string): { origin: string; tunnel: string; publicBase: string; inner: string } | null {
  const u = splitHttpUrl(url);
  const m = u ? TUNNEL_PATH.exec(u.path) : null;
  if (!u || !m) return null;
  const tunnel = m[1] ?? '';
  const inner = u.rest.slice(m[0].length);
  return { origin: u.origin, tunnel, publicBase: `${u.origin}/t/${tunnel}`, inner: inner.startsWith('/') ? inner : `/${inner}` };
}

/** Whether `url` is under the relay tunnel whose public URL is `publicBase`. */
export function underBase(url: string, publicBase: string): boolean {
  const u = splitHttpUrl(url);
  const b = splitHttpUrl(publicBase);
  if (!u || !b || u.origin !== b.origin) return false;
  return u.path === b.path || u.path.startsWith(`${b.path}/`);
}

/** `url` with its origin replaced by the tunnel's public URL, path and query kept byte for byte. */
export function throughTunnel(url: string, publicBase: string): string | null {
  const u = splitHttpUrl(url);
  return u ? publicBase.replace(/\/+$/, '') + u.rest : null;
}

/** The placeholders (known or not) that occur in `url`, in order of first appearance. */
export function placeholdersIn(url: string): string[] {
  return [...new Set(url.match(/\[[A-Za-z]+\]/g) ?? [])];
}

const KNOWN_PLACEHOLDER_VALUE = new Set<string>(PLACEHOLDERS);

function queryBounds(url: string): { start: number; end: number } | null {
  const q = url.indexOf('?');
  if (q < 0) return null;
  const hash = url.indexOf('#', q);
  return { start: q + 1, end: hash < 0 ? url.length : hash };
}

/**
 * redactUrl, except that a query value which is exactly a placeholder
 * (`key=[KEY]`) is kept: it is not a secret, and the check is about it.
 */
export function displayUrl(url: string): string {
  const redacted = redactUrl(url);
  const ob = queryBounds(url);
  const rb = queryBounds(redacted);
  if (!ob || !rb) return redacted;
  const original = url.slice(ob.start, ob.end).split('&');
  const parts = redacted.slice(rb.start, rb.end).split('&');
  if (original.length !== parts.length) return redacted;
  const kept = parts.map((part, i) => {
    const o = original[i] ?? '';
    const eq = o.indexOf('=');
    return eq >= 0 && KNOWN_PLACEHOLDER_VALUE.has(o.slice(eq + 1)) ? o : part;
  });
  return redacted.slice(0, rb.start) + kept.join('&') + redacted.slice(rb.end);
}

/** Anything URL-like in free text (a query, or a scheme://): redacted with displayUrl. */
const URL_LIKE = /[^\s'"<>`]*(?:\?|:\/\/)[^\s'"<>`]*/g;

/** Punctuation that ends a sentence rather than a URL ("see http://x/?a=1, then…"). */
const TRAILING = /[,.;:!)\]]+$/;

export function redactText(text: string): string {
  return text.replace(URL_LIKE, (token) => {
    const trail = TRAILING.exec(token)?.[0] ?? '';
    // A trailing "]" may be a placeholder's or [REDACTED]'s own: only split off what follows it.
    const cut = trail.includes(']') ? trail.slice(trail.lastIndexOf(']') + 1) : trail;
    return displayUrl(token.slice(0, token.length - cut.length)) + cut;
  });
}

/** A deep copy of `value` with every string passed through redactText. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

/** The path of an http(s) URL, percent-decoded for an allow-list entry (as the relay and agent compare it). */
export function allowListPath(path: string): string {
  const p = path || '/';
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}
