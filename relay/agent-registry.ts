/**
 * The agents connected to this relay and the tunnels they serve. New requests
 * for a tunnel are spread round-robin over its agents that are not leaving
 * and have stream capacity; an agent that said goaway gets new requests only
 * when no other agent can take them.
 */
import type { MuxSession } from '../src/mux/session.js';

export interface ConnectedAgent {
  /** Relay-assigned id of this connection (in both sides' logs). */
  connectionId: string;
  /** `sub` of the agent's token. */
  agentId: string;
  remoteAddress: string;
  tunnels: readonly string[];
  session: MuxSession;
  draining: boolean;
  /** Streams parked idle in the relay's keep-alive pools: open, but serving no request. */
  idleStreams: number;
}

export type PickResult = { agent: ConnectedAgent } | { none: true } | { busy: true };

export class AgentRegistry {
  private readonly byTunnel = new Map<string, ConnectedAgent[]>();
  private readonly cursor = new Map<string, number>();
  /** Tunnels that ever had an agent since start: they are "known" even when empty. */
  private readonly seen = new Set<string>();

  constructor(private readonly maxStreamsPerAgent: number) {}

  add(agent: ConnectedAgent): void {
    for (const t of agent.tunnels) {
      const list = this.byTunnel.get(t) ?? [];
      list.push(agent);
      this.byTunnel.set(t, list);
      this.seen.add(t);
    }
  }

  remove(agent: ConnectedAgent): void {
    for (const t of agent.tunnels) {
      const list = this.byTunnel.get(t);
      if (!list) continue;
      const i = list.indexOf(agent);
      if (i !== -1) list.splice(i, 1);
      if (list.length === 0) this.byTunnel.delete(t);
    }
  }

  hasSeen(tunnel: string): boolean {
    return this.seen.has(tunnel);
  }


  all(): ConnectedAgent[] {
    return [...new Set([...this.byTunnel.values()].flat())];
  }

  pick(tunnel: string): PickResult {
    const list = this.byTunnel.get(tunnel);
    if (!list || list.length === 0) return { none: true };
    const start = this.cursor.get(tunnel) ?? 0;
    let fallback: ConnectedAgent | undefined;
    for (let i = 0; i < list.length; i++) {
      const idx = (start + i) % list.length;
      const agent = list[idx];
      if (!agent.session.isOpen || agent.session.outgoingCount - agent.idleStreams >= this.maxStreamsPerAgent) continue;
      if (agent.draining) {
        fallback ??= agent;
        continue;
      }
      this.cursor.set(tunnel, idx + 1);
      return { agent };
    }
    return fallback ? { agent: fallback } : { busy: true };
  }
}
