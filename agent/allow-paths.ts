/**
 * A tunnel's `allowPaths` check on the agent: the last word on which paths of
 * an intranet service the relay may reach, whatever the relay sends.
 */
import { decodePath, hasDotSegment, pathAllowed, pathOf } from '../src/http/request-path.js';

export type PathVerdict = 'allowed' | 'denied' | 'bad-encoding';

/**
 * `allow`: exact paths, or prefixes ending in "/"; undefined allows every path.
 * The path is compared without its query, percent-decoded. A path with a "."
 * or ".." segment (also spelled with "\" or %2e) is denied, and so is one
 * with a NUL.
 */
export function checkPath(requestTarget: string, allow: readonly string[] | undefined): PathVerdict {
  if (allow === undefined) return 'allowed';
  const path = decodePath(pathOf(requestTarget));
  if (path === undefined) return 'bad-encoding';
  if (!path.startsWith('/') || path.includes('\0') || hasDotSegment(path)) return 'denied';
  return pathAllowed(path, allow) ? 'allowed' : 'denied';
}
