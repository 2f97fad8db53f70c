/**
 * Which tunnel a public request is for, and the path inside it.
 *
 * `/t/<tunnel>/<rest>` always; `<tunnel>.<baseDomain>` when configured. The
 * path inside the tunnel is passed on byte for byte (no normalisation, no
 * re-encoding), so a request whose path has a dot segment, raw or encoded
 * (`..`, `%2e%2E`, `.%2e`, with `/`, `\` or `%2f` between), is refused:
 * nothing downstream may resolve it to a path outside the tunnel or outside
 * the target's base path.
 */
import { CtbridgeError } from '../src/errors.js';
import { decodePath, hasDotSegment, pathOf } from '../src/http/request-path.js';
import { isTunnelName } from '../src/protocol.js';

export interface Route {
  tunnel: string;
  /** Path and query inside the tunnel, starting with '/'. */
  url: string;
  /** Path without query, percent-decoded (for allow-lists and logs). */
  path: string;
}

const PREFIX = '/t/';

/** null when the request names no tunnel (not ours to answer as a tunnel). */
export function routeRequest(rawUrl: string, host: string | undefined, baseDomain: string | undefined): Route | null {
  if (baseDomain && host) {
    const hostname = host.replace(/:\d+$/, '').toLowerCase();
    const suffix = `.${baseDomain.toLowerCase()}`;
    if (hostname.endsWith(suffix)) {
      const tunnel = hostname.slice(0, -suffix.length);
      if (isTunnelName(tunnel)) return inside(tunnel, rawUrl);
    }
  }
  if (!rawUrl.startsWith(PREFIX)) return null;
  const end = firstOf(rawUrl, PREFIX.length, ['/', '?']);
  const tunnel = rawUrl.slice(PREFIX.length, end);
  if (!isTunnelName(tunnel)) {
    throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', `"${truncate(tunnel)}" is not a valid tunnel name`, {
      hint: 'tunnel names are lower-case letters, digits and dashes, as in /t/<tunnel>/path',
    });
  }
  const rest = rawUrl.slice(end);
  return inside(tunnel, rest.startsWith('/') ? rest : `/${rest}`);
}

function inside(tunnel: string, url: string): Route {
  const rawPath = pathOf(url);
  const path = decodePath(rawPath);
  if (path === undefined) throw new CtbridgeError('CTB_BAD_REQUEST', 'the request path has an invalid percent-encoding', { params: { problem: 'the path has an invalid percent-encoding' } });
  if (hasDotSegment(path)) {
    throw new CtbridgeError('CTB_BAD_REQUEST', `path "${truncate(rawPath)}" contains a "." or ".." segment, which a tunnel does not allow`, {
      params: { problem: 'the path has a "." or ".." segment, which a tunnel does not allow' },
    });
  }
  return { tunnel, url, path };
}

function firstOf(s: string, from: number, chars: string[]): number {
  let end = s.length;
  for (const c of chars) {
    const i = s.indexOf(c, from);
    if (i !== -1 && i < end) end = i;
  }
  return end;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
