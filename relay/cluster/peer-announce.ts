/**
 * What another relay node may tell this one, checked like what an agent
 * says: its id must be a node id (the same rule as `cluster.nodeId`), the
 * tunnels it announces must be tunnel names (the agents' rule) and at most
 * MAX_NODE_TUNNELS of them. Anything else closes the link with a reason;
 * what goes to a log line is cleaned (untrusted()) and capped.
 */
import { isNodeId } from '../../src/config/index.js';
import { untrusted } from '../../src/log-text.js';
import { isTunnelName } from '../../src/protocol.js';

/** Tunnels one node may announce: the union of its agents' (each hello holds at most 1,000). */
export const MAX_NODE_TUNNELS = 10_000;
/** Tunnel names a log line lists; the rest are counted. */
export const LOGGED_TUNNELS = 20;

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

export function checkNodeId(v: unknown): Checked<string> {
  if (isNodeId(v)) return { ok: true, value: v };
  return { ok: false, problem: `node id ${typeof v === 'string' ? `'${untrusted(v, 64)}'` : untrusted(v)} is not a node id (1-63 letters, digits, ".", "_", "-")` };
}

/** A list of distinct tunnel names, sorted. */
export function checkTunnelList(v: unknown): Checked<string[]> {
  if (!Array.isArray(v)) return { ok: false, problem: `tunnels is ${untrusted(v) ?? 'missing'}, not a list of tunnel names` };
  if (v.length > MAX_NODE_TUNNELS) return { ok: false, problem: `announced ${v.length} tunnels; a node may announce at most ${MAX_NODE_TUNNELS}` };
  for (const t of v) {
    if (typeof t !== 'string' || !isTunnelName(t)) {
      return { ok: false, problem: `announced ${typeof t === 'string' ? `'${untrusted(t, 64)}'` : untrusted(t)}, which is not a tunnel name (1-63 lower-case letters, digits, "-")` };
    }
  }
  return { ok: true, value: [...new Set(v as string[])].sort() };
}

/** For a log line: the first LOGGED_TUNNELS names and how many there are. */
export function tunnelsForLog(tunnels: Iterable<string>): { tunnels: string[]; tunnelCount: number } {
  const all = [...tunnels];
  return { tunnels: all.length > LOGGED_TUNNELS ? [...all.slice(0, LOGGED_TUNNELS), `…and ${all.length - LOGGED_TUNNELS} more`] : all, tunnelCount: all.length };
}
