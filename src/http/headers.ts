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
const UPGRADE_FIELDS: readonly string[] = ['connection', 'upgrade'];

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

/** The field names a message's `Connection` headers list (lower case), or undefined when it has none. */
function connectionNamed(pairs: HeaderPairs): Set<string> | undefined {
  let named: Set<string> | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i].length !== 10 || pairs[i].toLowerCase() !== 'connection') continue;
    for (const token of pairs[i + 1].split(',')) {
      const n = token.trim().toLowerCase();
      if (n) (named ??= new Set()).add(n);
    }
  }
  return named;
}

/**
 * The hop-by-hop fields of a message: the fixed list plus every field its
 * `Connection` header names. With `keepUpgrade`, `Connection` and `Upgrade`
 * stay (a WebSocket upgrade is forwarded as one).
 */
export function hopByHopFields(pairs: HeaderPairs, keepUpgrade = false): Set<string> {
  const names = new Set(HOP_BY_HOP);
  for (const n of connectionNamed(pairs) ?? []) names.add(n);
  if (keepUpgrade) for (const n of UPGRADE_FIELDS) names.delete(n);
  return names;
}

export interface EndToEndOptions {
  /** Keep `Upgrade` and send `Connection: upgrade` alone (a WebSocket upgrade). */
  keepUpgrade?: boolean;
  /** More fields to drop (lower case). */
  alsoDrop?: ReadonlySet<string>;
}

/**
 * The pairs without hop-by-hop fields (the fixed list and those a
 * `Connection` header names), and without `alsoDrop`. An upgrade keeps
 * `Upgrade` and sends `Connection: upgrade` alone. One pass: this runs for
 * every request and response.
 */
export function endToEnd(pairs: HeaderPairs, options: EndToEndOptions = {}): string[] {
  const named = connectionNamed(pairs);
  const { keepUpgrade = false, alsoDrop } = options;
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const n = pairs[i].toLowerCase();
    if (HOP_BY_HOP.has(n) ? !(keepUpgrade && n === 'upgrade') : named?.has(n) && !(keepUpgrade && n === 'upgrade')) continue;
    if (alsoDrop?.has(n)) continue;
    out.push(pairs[i], pairs[i + 1]);
  }
  if (keepUpgrade) out.push('Connection', 'upgrade');
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
