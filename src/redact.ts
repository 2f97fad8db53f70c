/**
 * Scrubbing secrets out of what we log. Pure functions; the logger's own
 * `redact` paths (src/log.ts) are only the second line of defence.
 */
import { createHash } from 'node:crypto';

export const REDACTED = '[REDACTED]';

/** Query parameter names (compared case-insensitively, after percent-decoding) whose values are secret. */
const SECRET_PARAMS = new Set(['key', 'pass', 'password', 'token', 'access_token', 'secret']);

/** Header names (lower case) whose values are secret. */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-uctoken']);

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

function redactQuery(query: string): string {
  return query
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      const name = part.slice(0, eq);
      return SECRET_PARAMS.has(decodeName(name)) ? `${name}=${REDACTED}` : part;
    })
    .join('&');
}

/**
 * Replaces the values of secret query parameters (and a password in a full
 * URL's user-info) with `[REDACTED]`. Everything else is kept byte-for-byte.
 * Accepts "/path?x=1&token=abc" as well as absolute URLs.
 */
export function redactUrl(pathAndQuery: string): string {
  const url = pathAndQuery.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:)[^/?#@]*@/i, `$1${REDACTED}@`);
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const end = hash < 0 ? url.length : hash;
  return url.slice(0, q + 1) + redactQuery(url.slice(q + 1, end)) + url.slice(end);
}

type HeaderValue = string | string[] | number | undefined;

/** A copy of `headers` with credential-bearing header values replaced by `[REDACTED]`. */
export function redactHeaders<T extends Record<string, HeaderValue>>(headers: T): T {
  const out: Record<string, HeaderValue> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !SECRET_HEADERS.has(name.toLowerCase())) out[name] = value;
    else out[name] = Array.isArray(value) ? value.map(() => REDACTED) : REDACTED;
  }
  return out as T;
}

/** First 8 hex chars of sha256(value): lets logs correlate a CT `login` without revealing it. */
export function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}
