/**
 * The path of a request inside a tunnel, as both sides check it: split from
 * the query, percent-decoded, and refused when it has a "." or ".." segment,
 * raw or encoded (`..`, `%2e%2E`, `.%2e`), with "/", "\" or "%2f" between
 * (Windows servers treat "\" as "/"): a target would resolve such a path to
 * somewhere else. The one definition of the dot-segment check.
 */

/** The path part of a request target (before "?" or "#"). */
export function pathOf(target: string): string {
  const end = target.search(/[?#]/);
  return end < 0 ? target : target.slice(0, end);
}

/** The percent-decoded path, or undefined when its encoding is invalid. */
export function decodePath(rawPath: string): string | undefined {
  try {
    return decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
}

/** Whether a decoded path has a "." or ".." segment. */
export function hasDotSegment(decodedPath: string): boolean {
  return decodedPath.split(/[/\\]/).some((seg) => seg === '.' || seg === '..');
}

/** A path allow-list entry is an exact path, or a prefix when it ends in "/"; undefined allows every path. */
export function pathAllowed(path: string, allowPaths: readonly string[] | undefined): boolean {
  if (!allowPaths) return true;
  return allowPaths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
}
