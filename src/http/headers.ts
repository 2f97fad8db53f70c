/**
 * HTTP header fields as they travel through an exchange: raw pairs in order,
 * `[name, value, name, value, ...]`, duplicates and case kept (Node's
 * `rawHeaders`, undici's raw headers). Lookups compare names
 * case-insensitively. The one definition of header lookup and of the
 * hop-by-hop fields the bridge never forwards.
 */

/** Raw header pairs: `[name, value, name, value, ...]`. */
export type HeaderPairs = readonly string[];

/** RFC 9110 §7.6.1 connection-specific fields, plus the proxy credentials meant for a proxy hop. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
]);
/** What a WebSocket upgrade keeps of them: the upgrade itself. */
const UPGRADE_FIELDS: ReadonlySet<string> = new Set(['connection', 'upgrade']);

/** The first value of `name` (lower case), or undefined. */
export function getHeader(pairs: HeaderPairs, name: string): string | undefined {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i].toLowerCase() === name) return pairs[i + 1];
  return undefined;
}

/** `name` (lower case) with every value joined by ", ", as a list header reads. */
export function getHeaderList(pairs: HeaderPairs, name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i].toLowerCase() === name) out = out === undefined ? pairs[i + 1] : `${out}, ${pairs[i + 1]}`;
  }
  return out;
}

/** The pairs without the fields named in `drop` (lower case). */
export function withoutHeaders(pairs: HeaderPairs, drop: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    if (!drop.has(pairs[i].toLowerCase())) out.push(pairs[i], pairs[i + 1]);
  }
  return out;
}

/**
 * The hop-by-hop fields of a message: the fixed list plus every field its
 * `Connection` header names. With `keepUpgrade`, `Connection` and `Upgrade`
 * stay (a WebSocket upgrade is forwarded as one).
 */
export function hopByHopFields(pairs: HeaderPairs, keepUpgrade = false): Set<string> {
  const names = new Set(HOP_BY_HOP);
  const connection = getHeaderList(pairs, 'connection');
  if (connection) {
    for (const token of connection.split(',')) {
      const n = token.trim().toLowerCase();
      if (n) names.add(n);
    }
  }
  if (keepUpgrade) for (const n of UPGRADE_FIELDS) names.delete(n);
  return names;
}

/**
 * The pairs without hop-by-hop fields, and without `alsoDrop` (lower case).
 * An upgrade keeps `Upgrade` and sends `Connection: upgrade` alone.
 */
export function endToEnd(pairs: HeaderPairs, options: { keepUpgrade?: boolean; alsoDrop?: Iterable<string> } = {}): string[] {
  const drop = hopByHopFields(pairs, options.keepUpgrade);
  if (options.alsoDrop) for (const n of options.alsoDrop) drop.add(n);
  if (options.keepUpgrade) drop.add('connection');
  const out = withoutHeaders(pairs, drop);
  if (options.keepUpgrade) out.push('Connection', 'upgrade');
  return out;
}

/** The first value of a Node header (`string | string[]`). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The declared Content-Length, or undefined when absent or not a plain non-negative integer. */
export function declaredLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value);
}
