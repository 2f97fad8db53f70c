/**
 * Scrubbing secrets out of what we log. Pure functions; the logger's own
 * `redact` paths (src/log.ts) are only the second line of defence.
 */
import { createHash } from 'node:crypto';

export const REDACTED = '[REDACTED]';

/** Query parameter names (compared case-insensitively, after percent-decoding) whose values are secret. */
export const SECRET_PARAMS: readonly string[] = [
  'key', 'pass', 'password', 'passwd', 'pwd', 'token', 'access_token', 'secret',
  'api_key', 'apikey', 'sig', 'signature',
];

/** Header names (lower case) whose values are secret. */
export const SECRET_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-uctoken', 'x-ucsessionid'];

let secretParams = new Set(SECRET_PARAMS);
let secretHeaders = new Set(SECRET_HEADERS);

/**
 * Adds names (log.redact in relay.yaml / agent.yaml) to the built-in lists,
 * for every later redactUrl and redactHeaders call in this process: each
 * name covers both a query parameter and a header, case-insensitively.
 * Called once at start with the config's list; calling it again (a config
 * reload) replaces the previous extra names, and `[]` restores the defaults.
 */
export function configureRedaction(extraNames: readonly string[]): void {
  const extra = extraNames.map((n) => n.toLowerCase());
  secretParams = new Set([...SECRET_PARAMS, ...extra]);
  secretHeaders = new Set([...SECRET_HEADERS, ...extra]);
}

/** Whether a header's value is secret (built-in list and log.redact). */
export function isSecretHeader(name: string): boolean {
  return secretHeaders.has(name.toLowerCase());
}

/** Whether a query parameter's, form field's or JSON/XML field's value is secret (built-in list and log.redact). */
export function isSecretField(name: string): boolean {
  return secretParams.has(name.toLowerCase());
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/** A query string (or form body) with the values of secret parameters replaced. */
export function redactQuery(query: string): string {
  return query
    .split('&')
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      const name = part.slice(0, eq);
      return secretParams.has(decodeName(name)) ? `${name}=${REDACTED}` : part;
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
    if (value === undefined || !secretHeaders.has(name.toLowerCase())) out[name] = value;
    else out[name] = Array.isArray(value) ? value.map(() => REDACTED) : REDACTED;
  }
  return out as T;
}

/** First 8 hex chars of sha256(value): lets logs correlate a CT `login` without revealing it. */
export function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}
