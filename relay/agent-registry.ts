/**
 * The agents connected to this relay and the tunnels they serve. Each new
 * exchange for a tunnel goes to the next of its agents, round robin, that
 * has exchange capacity and has not said it is leaving: an agent that sent
 * `drain` gets no new exchange at all.
 */
import { EventEmitter } from 'node:events';
import type { MuxSession } from '../src/mux/session.js';
import type { VerifiedAgentClaims } from '../src/token.js';

export interface ConnectedAgent {
  /** Relay-assigned id of this connection (in both sides' logs). */
  readonly connectionId: string;
  /** `sub` of the agent's token. */
  readonly agentId: string;
  readonly remoteAddress: string;
  readonly tunnels: readonly string[];
  readonly session: MuxSession;
  /** The agent said it is leaving: no new exchanges. */
  draining: boolean;
  /** The token's claims as verified at connect time (checked again at expiry and on reload). */
  readonly claims?: VerifiedAgentClaims;
  readonly since?: Date;
  /** What the agent said it runs (capped). */
  readonly software?: string;
  readonly hostname?: string;
}

export type PickResult = { agent: ConnectedAgent } | { none: true } | { busy: true } | { draining: true };

export class AgentRegistry extends EventEmitter<{ change: [] }> {
  private readonly byTunnel = new Map<string, ConnectedAgent[]>();
  private readonly cursor = new Map<string, number>();
  /** Tunnels that ever had an agent since start: they are "known" even when empty. */
  private readonly seen = new Set<string>();

  private readonly limit: () => number;

  /** `maxExchangesPerAgent`: relay.yaml limits.maxStreamsPerAgent (a function: it may change on reload). */
  constructor(maxExchangesPerAgent: number | (() => number)) {
    super();
    this.limit = typeof maxExchangesPerAgent === 'number' ? () => maxExchangesPerAgent : maxExchangesPerAgent;
  }

  add(agent: ConnectedAgent): void {
    for (const t of agent.tunnels) {
      const list = this.byTunnel.get(t) ?? [];
      list.push(agent);
      this.byTunnel.set(t, list);
      this.seen.add(t);
    }
    this.emit('change');
  }

  /** The agent said it is leaving: no new exchange goes to it. */
  markDraining(agent: ConnectedAgent): void {
    agent.draining = true;
    this.emit('change');
  }

  remove(agent: ConnectedAgent): void {
    for (const t of agent.tunnels) {
      const list = this.byTunnel.get(t);
      if (!list) continue;
      const i = list.indexOf(agent);
      if (i !== -1) list.splice(i, 1);
      if (list.length === 0) this.byTunnel.delete(t);
    }
    this.emit('change');
  }

  hasSeen(tunnel: string): boolean {
    return this.seen.has(tunnel);
  }

  all(): ConnectedAgent[] {
    return [...new Set([...this.byTunnel.values()].flat())];
  }

  /** The agents serving `tunnel` now. */
  agentsOf(tunnel: string): readonly ConnectedAgent[] {
    return this.byTunnel.get(tunnel) ?? [];
  }

  /** The agent for the next exchange on `tunnel`: the one that will serve it (never `avoid`). */
  pick(tunnel: string, avoid?: ConnectedAgent): PickResult {
    const list = this.byTunnel.get(tunnel);
    if (!list || list.length === 0) return { none: true };
    const start = this.cursor.get(tunnel) ?? 0;
    let draining = 0;
    const limit = this.limit();
    for (let i = 0; i < list.length; i++) {
      const idx = (start + i) % list.length;
      const agent = list[idx];
      if (agent.draining || !agent.session.isOpen || agent === avoid) {
        draining++;
        continue;
      }
      if (agent.session.outgoingCount >= limit) continue;
      this.cursor.set(tunnel, idx + 1);
      return { agent };
    }
    return draining === list.length ? { draining: true } : { busy: true };
  }
}
