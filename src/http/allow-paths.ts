/** A path allow-list entry is an exact path, or a prefix when it ends in '/'. */
export function pathAllowed(path: string, allowPaths: readonly string[] | undefined): boolean {
  if (!allowPaths) return true;
  return allowPaths.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
}
