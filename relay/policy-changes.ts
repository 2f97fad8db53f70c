/**
 * What a reload does to the protection of tunnels that are being served:
 * removing a tunnel from relay.yaml, or its `allowFrom` or `allowPaths`,
 * while an agent still serves it (its token names it) would otherwise open
 * it to every caller on every path without a word. The reload lists each
 * such change in a warning and in its answer; with `requireDeclaredTunnels`
 * a tunnel relay.yaml no longer names is not served at all.
 */
import type { RelayConfig, RelayTunnelConfig } from '../src/config/index.js';
import { CidrList, type Cidr } from '../src/config/units.js';
import { pathAllowed } from '../src/http/request-path.js';

export interface PolicyChange {
  tunnel: string;
  /** What changed and what it means, for people: "allowFrom removed: any address may call it". */
  change: string;
}

/** Whether one range of `list`, at least as wide as `c`, holds it (CidrList does the address math). */
function covers(list: CidrList, c: Cidr): boolean {
  const wider = list.entries.filter((e) => e.family === c.family && e.prefix <= c.prefix);
  return wider.length > 0 && new CidrList(wider).contains(c.address);
}

const list = (xs: readonly string[]): string => xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, and ${xs.length - 5} more` : '');

/** How `next` weakens the policy of tunnel `name` compared with `prev` (either may be absent: not declared). */
function tunnelChanges(prev: RelayTunnelConfig | undefined, next: RelayTunnelConfig | undefined, strict: boolean): string[] {
  if (!prev) return [];
  if (!next) {
    if (strict) return ['no longer declared in relay.yaml: not served any more (requireDeclaredTunnels)'];
    const lost = [prev.allowFrom && 'allowFrom', prev.allowPaths && 'allowPaths', prev.kind === 'clienttracker' && 'Client Tracker checks'].filter(Boolean);
    return [`no longer declared in relay.yaml, but an agent still serves it: now open to every address on every path${lost.length ? ` (lost its ${lost.join(' and ')})` : ''}; declare it again, or set requireDeclaredTunnels: true to stop serving undeclared tunnels`];
  }
  const out: string[] = [];
  if (prev.allowFrom && !next.allowFrom) out.push('allowFrom removed: any address may call it');
  else if (prev.allowFrom && next.allowFrom) {
    const added = next.allowFrom.entries.filter((c) => !covers(prev.allowFrom!, c)).map((c) => c.text);
    if (added.length) out.push(`allowFrom widened: now also ${list(added)}`);
  }
  if (prev.allowPaths && !next.allowPaths) out.push('allowPaths removed: every path is open');
  else if (prev.allowPaths && next.allowPaths) {
    const added = next.allowPaths.filter((p) => !pathAllowed(p, prev.allowPaths));
    if (added.length) out.push(`allowPaths widened: now also ${list(added)}`);
  }
  if (prev.kind === 'clienttracker' && next.kind !== 'clienttracker') out.push(`kind changed from clienttracker to ${next.kind}: Client Tracker answers are no longer checked or rewritten`);
  if (next.maxRequestBody > prev.maxRequestBody) out.push(`maxRequestBody raised from ${prev.maxRequestBody} to ${next.maxRequestBody} bytes`);
  return out;
}

/**
 * Every served tunnel whose protection `next` removes or weakens compared
 * with `prev`; `served(name)` says whether an agent (here or on another
 * node) serves it now.
 */
export function weakenedPolicies(prev: RelayConfig, next: RelayConfig, served: (tunnel: string) => boolean, servedNames: Iterable<string>): PolicyChange[] {
  const names = new Set([...Object.keys(prev.tunnels), ...servedNames]);
  const out: PolicyChange[] = [];
  for (const name of [...names].sort()) {
    if (!served(name)) continue;
    const before = Object.hasOwn(prev.tunnels, name) ? prev.tunnels[name] : undefined;
    const after = Object.hasOwn(next.tunnels, name) ? next.tunnels[name] : undefined;
    for (const change of tunnelChanges(before, after, next.requireDeclaredTunnels)) out.push({ tunnel: name, change });
    if (!before && !after && prev.requireDeclaredTunnels && !next.requireDeclaredTunnels) {
      out.push({ tunnel: name, change: 'requireDeclaredTunnels turned off: this undeclared tunnel is now served to every address on every path' });
    }
  }
  return out;
}

/** Served tunnels `next` does not declare while requireDeclaredTunnels is on: not served (for the reload answer). */
export function undeclaredServed(next: RelayConfig, servedNames: Iterable<string>): string[] {
  if (!next.requireDeclaredTunnels) return [];
  return [...new Set(servedNames)].filter((t) => !Object.hasOwn(next.tunnels, t)).sort();
}

/** The reload answer's sentence for the changes, or '' when there are none. */
export function describeChanges(changes: readonly PolicyChange[], notServed: readonly string[]): string {
  const parts: string[] = [];
  if (changes.length) parts.push(`policy weakened for tunnels agents serve: ${changes.map((c) => `${c.tunnel}: ${c.change}`).join('; ')}`);
  const strictOnly = notServed.filter((t) => !changes.some((c) => c.tunnel === t));
  if (strictOnly.length) parts.push(`not served (not declared in relay.yaml, requireDeclaredTunnels is on): ${list(strictOnly)}`);
  return parts.join('; ');
}
