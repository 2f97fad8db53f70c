/**
 * Value parsers for config keys: `(value) => T`, throwing `ValueError` with
 * "expected ..., got ..." messages. URLs are echoed with credentials masked;
 * secrets are never echoed.
 */
import { isIP } from 'node:net';
import {
  DURATION_EXPECTED,
  MAX_CONFIG_DURATION_MS,
  SIZE_EXPECTED,
  ValueError,
  formatDuration,
  formatSize,
  formatValue,
  isHostname,
  parseDuration,
  parseSize,
} from './units.js';
import { typeName, type Parse } from './schema-check.js';
import { isTunnelName } from '../protocol.js';

/**
 * Mask what may hold credentials in a URL-ish string: everything before the
 * last `@` (user:password) and any query or fragment (tokens in `?token=`).
 */
export function redactUrl(text: string): string {
  let out = text.replace(/[?#].*$/s, (m) => `${m[0]}***`);
  const at = out.lastIndexOf('@');
  if (at !== -1) out = `${/^[a-z][a-z0-9+.-]*:\/\//i.exec(out)?.[0] ?? ''}***${out.slice(at)}`;
  return out;
}

/** Like `formatValue`, masking URL credentials in strings. */
export function formatUrlValue(value: unknown): string {
  return typeof value === 'string' ? formatValue(redactUrl(value)) : formatValue(value);
}

/** A duration in ms, by default between 1ms and 24d (timers overflow past ~24.8d). */
export function duration(options: { min?: number; max?: number } = {}): Parse<number> {
  const { min = 1, max = MAX_CONFIG_DURATION_MS } = options;
  return (v) => {
    const ms = parseDuration(v);
    if (ms < min) throw new ValueError(`expected ${DURATION_EXPECTED} of at least ${formatDuration(min)}, got ${formatValue(v)}`);
    if (ms > max) throw new ValueError(`expected ${DURATION_EXPECTED} of at most ${formatDuration(max)}, got ${formatValue(v)}`);
    return ms;
  };
}

/** A size in bytes within `[min, max]`. */
export function size(options: { min?: number; max?: number } = {}): Parse<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return (v) => {
    const bytes = parseSize(v);
    if (bytes < min) throw new ValueError(`expected ${SIZE_EXPECTED} of at least ${formatSize(min)}, got ${formatValue(v)}`);
    if (bytes > max) throw new ValueError(`expected ${SIZE_EXPECTED} of at most ${formatSize(max)}, got ${formatValue(v)}`);
    return bytes;
  };
}

export function integer(min: number, max: number): Parse<number> {
  return (v) => {
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    throw new ValueError(`expected an integer from ${min} to ${max}, got ${formatValue(v)}`);
  };
}

export const boolean: Parse<boolean> = (v) => {
  if (typeof v === 'boolean') return v;
  throw new ValueError(`expected true or false, got ${formatValue(v)}`);
};

export function oneOf<const T extends string>(choices: readonly T[]): Parse<T> {
  return (v) => {
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    throw new ValueError(`expected one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${formatValue(v)}`);
  };
}

/** A non-empty string without surrounding whitespace. */
export const text: Parse<string> = (v) => {
  if (typeof v === 'string' && v.trim() !== '') return v.trim();
  throw new ValueError(`expected a non-empty string, got ${formatValue(v)}`);
};

/** A secret string of at least `minBytes` bytes of UTF-8; the value is never echoed (only its type). */
export function secret(minBytes: number, where = ''): Parse<string> {
  return (v) => {
    if (typeof v === 'string' && Buffer.byteLength(v, 'utf8') >= minBytes) return v;
    const got = typeof v === 'string' ? 'a shorter string' : typeName(v);
    throw new ValueError(`expected a string of at least ${minBytes} bytes${where}, got ${got}`);
  };
}

interface UrlOptions {
  /** Accepted protocols, e.g. `['http:', 'https:']`. */
  protocols: readonly string[];
  /** Whether `user:pass@` is allowed (it is never echoed either way). */
  credentials?: boolean;
  /** Require the path to end with `/`. */
  trailingSlash?: boolean;
}

/** An absolute URL without query or fragment → `URL.href`. */
export function url(options: UrlOptions): Parse<string> {
  const schemes = options.protocols.map((p) => `${p}//`);
  const kind = `${schemes.slice(0, -1).join(', ')}${schemes.length > 1 ? ' or ' : ''}${schemes.at(-1)} URL`;
  const expected = `expected ${kind.startsWith('h') ? 'an' : 'a'} ${kind}`;
  return (v) => {
    const parsed = typeof v === 'string' && URL.canParse(v.trim()) ? new URL(v.trim()) : null;
    const got = formatUrlValue(v);
    if (!parsed || !options.protocols.includes(parsed.protocol) || !parsed.hostname) {
      throw new ValueError(`${expected}, got ${got}`);
    }
    if (parsed.search || parsed.hash || (v as string).includes('?') || (v as string).includes('#')) {
      throw new ValueError(`${expected} without a query or fragment, got ${got}`);
    }
    if (!options.credentials && (parsed.username || parsed.password)) {
      throw new ValueError(`${expected} without user:password, got ${got}`);
    }
    if (options.trailingSlash && !parsed.pathname.endsWith('/')) {
      throw new ValueError(`${expected} ending with "/", got ${got}`);
    }
    return parsed.href;
  };
}

/** Drop trailing slashes from a URL's path (`http://h/app/` → `http://h/app`, `http://h/` → `http://h`). */
export function stripTrailingSlash(href: string): string {
  return href.replace(/\/+$/, '');
}

/** A URL path for an allow-list: exact path, or a prefix ending in `/`. */
export const allowPath: Parse<string> = (v) => {
  const fail = (why: string): never => {
    throw new ValueError(`expected a path starting with "/" (exact, or a prefix ending in "/")${why}, got ${formatValue(v)}`);
  };
  if (typeof v !== 'string' || !v.startsWith('/')) return fail('');
  if (/[\s?#]/.test(v)) return fail(' without spaces, query or fragment');
  if (v.split('/').some((seg) => seg === '.' || seg === '..')) return fail(' without "." or ".." segments');
  return v;
};

/** A DNS name (no trailing dot, no wildcard), lower-cased. */
export const domain: Parse<string> = (v) => {
  if (typeof v === 'string' && isIP(v) === 0 && isHostname(v) && !v.includes('_')) return v.toLowerCase();
  throw new ValueError(`expected a DNS name such as "tunnels.example.com", got ${formatValue(v)}`);
};

/** Tunnel names are DNS labels so they can be host names under `baseDomain`. */
export const tunnelName: Parse<string> = (v) => {
  if (typeof v === 'string' && isTunnelName(v)) return v;
  throw new ValueError(
    `expected a tunnel name of lowercase letters, digits and "-" (a DNS label: 1-63 characters, no "-" at either end), got ${formatValue(v)}`,
  );
};
