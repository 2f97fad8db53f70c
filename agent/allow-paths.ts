/**
 * A tunnel's `allowPaths` check on the agent: the last word on which paths of
 * an intranet service the relay may reach, whatever the relay sends.
 */

import { pathAllowed } from '../src/http/allow-paths.js';

export type PathVerdict = 'allowed' | 'denied' | 'bad-encoding';

/**
 * `allow`: exact paths, or prefixes ending in "/"; undefined allows every path.
 * The path is compared without its query, percent-decoded. A path with a "."
 * or ".." segment (also spelled with "\" or %2e, which Windows servers treat
 * alike) is denied: the target would resolve it to somewhere else.
 */
export function checkPath(requestUrl: string, allow: readonly string[] | undefined): PathVerdict {
  if (allow === undefined) return 'allowed';
  const end = requestUrl.search(/[?#]/);
  const raw = end < 0 ? requestUrl : requestUrl.slice(0, end);
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return 'bad-encoding';
  }
  if (!path.startsWith('/') || path.includes('\0')) return 'denied';
  if (path.replace(/\\/g, '/').split('/').some((seg) => seg === '.' || seg === '..')) return 'denied';
  return pathAllowed(path, allow) ? 'allowed' : 'denied';
}
