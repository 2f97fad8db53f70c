/**
 * The connections an agent keeps for one relay URL. A single relay needs
 * one. A cluster behind one load balancer tells the agent its nodes (in
 * `ready`, and in `cluster` messages when they change): the agent then
 * dials the same URL again until it holds a connection to every node (up
 * to MAX_NODES), so losing a node loses no tunnel and a request rarely needs
 * forwarding between nodes. A connection that lands on a node already
 * served is recycled (drained, closed, dialed again: the load balancer
 * sends the next one elsewhere). A node that is leaving says goaway: a
 * replacement connection starts at once, and the old one drains once it is
 * ready.
 */
import { EventEmitter } from 'node:events';
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { MuxSession } from '../src/mux/session.js';
import type { RelayDial } from './forward-proxy.js';
import { NodeLandings } from './node-landings.js';
import { RelayConnection } from './relay-connection.js';
import type { ReadyInfo } from './relay-messages.js';
import type { RelayConnectionStatus } from './relay-status.js';
import type { RelayContext } from './relay-errors.js';

/** At most this many connections per relay URL (one per node). */
export const MAX_NODES = 8;

export interface RelayGroupEvents {
  ready: [info: ReadyInfo];
  disconnect: [code: number, reason: string];
}

export class RelayGroup extends EventEmitter<RelayGroupEvents> {
  private members: RelayConnection[] = [];
  private readonly leaving = new Set<RelayConnection>();
  /** The cluster's nodes as the relay last told them; empty for a single relay. */
  private nodes: string[] = [];
  private stopped = false;
  /** Connections that landed on a node already served: the next dial waits longer. */
  private readonly landings = new NodeLandings();

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly dial: RelayDial,
    private readonly ctx: RelayContext,
    private readonly onExchange: (exchange: Exchange) => void,
  ) {
    super();
  }

  get connected(): boolean {
    return this.all().some((c) => c.connected);
  }

  get openExchanges(): number {
    return this.all().reduce((n, c) => n + c.openExchanges, 0);
  }

  readySession(): MuxSession | undefined {
    return this.members.map((c) => c.readySession).find((s) => s !== undefined);
  }

  status(): RelayConnectionStatus[] {
    return this.all().map((c) => c.status());
  }

  start(): void {
    this.add();
  }

  stopReconnecting(): void {
    this.stopped = true;
    for (const c of this.all()) c.stopReconnecting();
  }

  drain(reason: string, ms: number): Promise<void> {
    return Promise.all(this.all().map((c) => c.drain(reason, ms))).then(() => undefined);
  }

  close(reason: string, ms: number): Promise<void> {
    return Promise.all(this.all().map((c) => c.close(reason, ms))).then(() => undefined);
  }

  /** Leaves every node without losing a request (a reload replaced this group). */
  retire(reason: string, grace: number): Promise<void> {
    this.stopped = true;
    return Promise.all(this.all().map((c) => c.retire(reason, grace))).then(() => undefined);
  }

  private all(): RelayConnection[] {
    return [...this.members, ...this.leaving];
  }

  private add(): RelayConnection {
    const c = new RelayConnection(this.config, this.log, this.dial, this.ctx, this.onExchange);
    c.on('ready', (info) => this.onReady(c, info));
    c.on('disconnect', (code, reason) => this.emit('disconnect', code, reason));
    c.on('cluster', (nodes) => this.onNodes(nodes));
    c.on('goaway', () => this.onGoaway(c));
    this.members.push(c);
    c.start();
    return c;
  }

  private onReady(c: RelayConnection, info: ReadyInfo): void {
    if (info.nodes) {
      if (info.nodes.join() !== this.nodes.join()) this.landings.reset();
      this.nodes = info.nodes;
    }
    const sameNode = info.node !== undefined && this.members.some((m) => m !== c && m.connected && !m.retiring && m.node === info.node);
    if (sameNode && this.members.length > 1) {
      // Already served: dial again; the load balancer sends the next connection elsewhere.
      const { delayMs: delay, slowedNow } = this.landings.landedOnServed(info.node!);
      if (slowedNow) {
        this.log.info({ node: info.node, nodes: this.nodes }, 'every connection to this relay URL reaches the same node; the others are tried once a minute (is a load balancer spreading connections in front of the relays?)');
      }
      this.log.debug({ node: info.node, retryInMs: delay }, 'connected to a relay node already served; connecting again');
      void c.retire('node already served', this.config.timeouts.shutdownGrace, true, Math.round(delay * (0.5 + Math.random() / 2)));
    } else {
      this.landings.reset();
      c.logReady(info);
      this.emit('ready', info);
    }
    this.fill();
  }

  private onNodes(nodes: string[]): void {
    // A node joined or left: what was learnt about landing on served nodes is stale.
    if (nodes.join() !== this.nodes.join()) this.landings.reset();
    this.nodes = nodes;
    this.fill();
  }

  /** One connection per node the relay named, no more, no fewer. */
  private fill(): void {
    if (this.stopped) return;
    const wanted = Math.min(Math.max(this.nodes.length, 1), MAX_NODES);
    while (this.members.length < wanted) this.add();
    // Fewer nodes now: the connections that serve none of them go first, never the only one to a listed node.
    while (this.members.length > wanted) {
      const spare = this.spare();
      if (!spare) break;
      this.members.splice(this.members.indexOf(spare), 1);
      this.leaving.add(spare);
      void spare.retire('the cluster has fewer nodes', this.config.timeouts.shutdownGrace).finally(() => this.leaving.delete(spare));
    }
  }

  /**
   * The member that can go without costing a node its connection: one
   * still dialing, one on a node no longer listed, one already leaving
   * (a duplicate being recycled), or a second one on the same node.
   */
  private spare(): RelayConnection | undefined {
    const { members, nodes } = this;
    return (
      members.find((m) => !m.connected) ??
      members.find((m) => !m.node || !nodes.includes(m.node)) ??
      members.find((m) => m.retiring) ??
      members.find((m, i) => members.findIndex((o) => o.node === m.node) !== i)
    );
  }

  /** The node behind `c` is leaving: a replacement first, then `c` drains. */
  private onGoaway(c: RelayConnection): void {
    if (this.stopped || !this.members.includes(c)) return;
    this.members.splice(this.members.indexOf(c), 1);
    this.leaving.add(c);
    c.stopReconnecting();
    const replacement = this.add();
    const retire = (): void => {
      clearTimeout(timer);
      replacement.off('ready', retire);
      void c.retire('relay node leaving', this.config.timeouts.shutdownGrace).finally(() => this.leaving.delete(c));
    };
    // The node closes the connection itself once it is done; until then it serves what it has.
    const timer = setTimeout(retire, this.config.timeouts.connect);
    replacement.once('ready', retire);
  }
}
