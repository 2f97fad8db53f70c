/**
 * Map an intranet URL under a tunnel target to the relay's public URL for
 * that tunnel, keeping the path and query byte for byte: `[ID]` must stay
 * `[ID]`, so nothing here goes through `new URL().toString()`.
 */
import { CtbridgeError } from '../errors.js';

export interface PublicUrlOptions {
  /**
   * The tunnel target's base URL(s) as the provider writes them, e.g.
   * `http://intranet.example/ct`. Several spellings of the same target (host
   * aliases, an IP) may be listed; `localhost` and `127.0.0.1` are different
   * hosts unless both are listed.
   */
  targetBase: string | readonly string[];
  /** The relay's public URL for the tunnel, e.g. `https://relay.example/t/toronto`. */
  publicBase: string;
}

interface Base {
  origin: string;
  /** Path without trailing slashes ('' for the root). */
  path: string;
}

const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([\s\S]*)$/;
const AUTHORITY = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d*))?$/;
const DEFAULT_PORTS = new Map([
  ['http', '80'],
  ['https', '443'],
]);

/** Scheme and host compared case-insensitively, default ports made explicit; null if not absolute or has user info. */
function split(url: string): { origin: string; rest: string } | null {
  const m = ABSOLUTE.exec(url);
  if (!m) return null;
  const [, rawScheme = '', authority = '', rest = ''] = m;
  const a = AUTHORITY.exec(authority);
  if (!a || a[1] === '') return null;
  const scheme = rawScheme.toLowerCase();
  const port = a[2] || DEFAULT_PORTS.get(scheme) || '';
  return { origin: `${scheme}://${(a[1] ?? '').toLowerCase()}:${port}`, rest };
}

function parseBase(targetBase: string): Base {
  const parts = split(targetBase);
  if (!parts) {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `Tunnel target '${targetBase}' is not an absolute URL`, {
      hint: 'Write it like http://intranet.example or http://intranet.example:8080/app',
    });
  }
  return { origin: parts.origin, path: parts.rest.replace(/[?#][\s\S]*$/, '').replace(/\/+$/, '') };
}

function under(rest: string, path: string): boolean {
  return rest.startsWith(path) && (rest.length === path.length || '/?#'.includes(rest.charAt(path.length)));
}

/**
 * The public URL for `intranetUrl`, or null when it is not under any target
 * base (then it is left as it is, and the caller reports it). Paths compare
 * case-sensitively. With several matching bases the longest path wins.
 */
export function publicUrlFor(intranetUrl: string, options: PublicUrlOptions): string | null {
  const url = split(intranetUrl);
  if (!url) return null;
  const bases = (typeof options.targetBase === 'string' ? [options.targetBase] : options.targetBase).map(parseBase);
  let best: Base | undefined;
  for (const base of bases) {
    if (base.origin === url.origin && under(url.rest, base.path) && (!best || base.path.length > best.path.length)) {
      best = base;
    }
  }
  if (!best) return null;
  return options.publicBase.replace(/\/+$/, '') + url.rest.slice(best.path.length);
}
