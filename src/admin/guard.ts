/**
 * Who may talk to the admin listener, beyond `admin.allowFrom` (addresses):
 *
 * - The `Host` a request names must be one of the listener's own names: an
 *   IP literal, `localhost`, or a name in `admin.hosts`. A web page the
 *   admin visits can point its own host name at 127.0.0.1 (DNS rebinding);
 *   the browser then sends that name as `Host`, and without this check the
 *   page could read /api/status (the agent's holds intranet target URLs).
 * - A state-changing request (POST /reload) must not come from a browser
 *   page of another site: `Origin`, when sent, names this listener;
 *   `Sec-Fetch-Site`, when sent, is same-origin or none; and it carries
 *   `X-Ctbridge-Admin: 1`, which a page can only send with a CORS preflight
 *   this listener never grants (a plain form post cannot send it).
 *
 * Pure functions, so the rules are unit-tested apart from the server.
 */
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** The header `ctbridge reload` sends; a form post or a simple fetch cannot. */
export const ADMIN_HEADER = 'x-ctbridge-admin';

/**
 * Response headers of every admin answer: the pages run only their own
 * fixed inline styles and scripts (by hash), load nothing from elsewhere,
 * talk only to this listener, and may not be framed; nothing is sniffed;
 * no CORS.
 */
export function securityHeaders(sources: { styles: readonly string[]; scripts?: readonly string[] }): Record<string, string> {
  const list = (hashes: readonly string[]): string => hashes.map((h) => `'${h}'`).join(' ');
  const scripts = sources.scripts?.length ? `script-src ${list(sources.scripts)}; connect-src 'self'; ` : '';
  return {
    'content-security-policy': `default-src 'none'; style-src ${list(sources.styles)}; ${scripts}base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
}

/** The host name of a `Host` value, lower case, without port or IPv6 brackets; undefined when malformed. */
export function hostOf(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (v.startsWith('[')) {
    const m = /^\[([0-9a-f:.]+(?:%[\w.-]+)?)\](?::\d{1,5})?$/.exec(v);
    return m ? m[1] : undefined;
  }
  const m = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(v);
  return m ? m[1].replace(/\.$/, '') : undefined;
}

/**
 * Why a request's `Host` is not one of this listener's names, or undefined
 * when it is (or absent: only a browser rebinding a name is the danger,
 * and browsers always send Host).
 */
export function hostRefusal(host: string | undefined, names: readonly string[]): string | undefined {
  if (host === undefined) return undefined;
  const name = hostOf(host);
  if (name === undefined) return 'the Host header is malformed';
  if (isIP(name.replace(/%.*$/, '')) !== 0 || name === 'localhost') return undefined;
  if (names.includes(name)) return undefined;
  return 'the Host header names a host this admin listener does not answer for: use its IP address or localhost, or list the name in admin.hosts';
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Why a state-changing request looks cross-site (or is a simple request a
 * browser page could send), or undefined when it may go ahead.
 */
export function crossSiteRefusal(headers: IncomingHttpHeaders): string | undefined {
  const site = first(headers['sec-fetch-site'])?.trim().toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `a browser sent it from another site (Sec-Fetch-Site: ${site === 'same-site' || site === 'cross-site' ? site : 'other'})`;
  }
  const origin = first(headers.origin)?.trim();
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      const u = new URL(origin);
      originHost = u.protocol === 'http:' || u.protocol === 'https:' ? u.host.toLowerCase() : undefined;
    } catch {
      originHost = undefined;
    }
    const host = first(headers.host)?.trim().toLowerCase();
    if (originHost === undefined || host === undefined || originHost !== host) {
      return 'its Origin is not this admin listener (a page of another site sent it)';
    }
  }
  if (first(headers[ADMIN_HEADER])?.trim() !== '1') {
    return `it lacks the header "X-Ctbridge-Admin: 1" (ctbridge reload sends it; a browser form cannot)`;
  }
  return undefined;
}
