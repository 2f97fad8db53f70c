/**
 * The agent's connections to its relays: one group per URL in `relay:`
 * (relay-group.ts: one connection, or one per node of a cluster). A reload
 * that changes how the agent talks to a relay (token, tunnels, proxy, CA,
 * windows, the URL list) replaces connections make-before-break: the new
 * one starts beside the old; once it is ready, the old one drains (the
 * relay opens nothing more on it), finishes what it carries, and closes. A
 * new connection that is never accepted (a refused token, say) leaves the
 * old one serving, and the log says why.
 */
import { EventEmitter } from 'node:events';
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { MuxSession } from '../src/mux/session.js';
import { redactUrl } from '../src/redact.js';
import { createRelayDial, pacUrlOf, type RelayDial } from './forward-proxy.js';
import { PacFile } from './pac.js';
import { relayTrust } from './trust.js';
import type { ReadyInfo } from './relay-messages.js';
import type { RelayConnectionStatus } from './relay-status.js';
import { RelayGroup } from './relay-group.js';
import { relayContext } from './relay-problem.js';
import { CLOSE_HANDSHAKE_MS, DRAIN_CONFIRM_MS } from './relay-timeouts.js';

export interface RelayConnectionsEvents {
  ready: [info: ReadyInfo];
  disconnect: [code: number, reason: string];
}


type Link = { key: string; connection: RelayGroup; dial: RelayDial };

/** What decides how a connection talks to its relay: a change needs a new connection. */
function linkKey(config: AgentConfig, relay: string): string {
  return JSON.stringify([relay, config.token, Object.keys(config.tunnels), config.proxy, config.proxyAuth, config.trust, config.ca?.text, config.streamWindow, config.heartbeat, config.limits.maxStreams, config.timeouts.connect]);
}

export class RelayConnections extends EventEmitter<RelayConnectionsEvents> {
  private links: Link[] = [];
  /** The PAC file of proxy: pac+... or auto, shared by every relay URL's dial: one fetch per start or reload. */
  private pacFile: PacFile | undefined;
  private readonly retiring = new Set<RelayGroup>();

  constructor(
    private readonly log: Logger,
    private readonly onExchange: (exchange: Exchange) => void,
  ) {
    super();
  }

  /** Connected to at least one relay. */
  get connected(): boolean {
    return this.links.some((l) => l.connection.connected) || [...this.retiring].some((c) => c.connected);
  }

  /** A session to send provider messages on: the first relay listed that is connected. */
  readySession(): MuxSession | undefined {
    return this.links.map((l) => l.connection.readySession()).find((s) => s !== undefined);
  }

  status(): RelayConnectionStatus[] {
    return [...this.links.map((l) => l.connection), ...this.retiring].flatMap((g) => g.status());
  }

  /** Connects to every relay of `config`, keeping connections that `config` does not change. */
  apply(config: AgentConfig): { started: number; kept: number; retired: number } {
    const next: Link[] = [];
    const old = new Map(this.links.map((l) => [l.key, l]));
    let started = 0;
    // Read only when a link is made: with `trust: [system]` it reads the whole OS store.
    let trust: ReturnType<typeof relayTrust> | undefined;
    const pacFile = this.sharedPacFile(config);
    for (const relay of config.relays) {
      const key = linkKey(config, relay);
      const kept = old.get(key);
      if (kept) {
        old.delete(key);
        next.push(kept);
        // A PAC file may have changed with no change to agent.yaml: fetched again (once, sharedPacFile), its answer logged.
        kept.dial.refresh?.();
        continue;
      }
      const one: AgentConfig = { ...config, relay };
      trust ??= relayTrust(config);
      const dial = createRelayDial(one, process.env, trust, this.log, pacFile);
      const ctx = relayContext(config, relay, dial, this.log);
      // `relayUrl`, not `relay`: RelayConnection's own lines have a `relay` field, and a line must not repeat a key.
      const log = config.relays.length > 1 ? this.log.child({ relayUrl: redactUrl(relay) }) : this.log;
      const connection = new RelayGroup(one, log, dial, ctx, this.onExchange);
      connection.on('ready', (info) => this.emit('ready', info));
      connection.on('disconnect', (code, reason) => this.emit('disconnect', code, reason));
      next.push({ key, connection, dial });
      started++;
    }
    if (trust) {
      this.log.info({ trust: trust.sources }, 'TLS trust for the relay');
      if (trust.warning) this.log.warn({ hint: trust.warning }, 'system certificate store unavailable');
    }
    // The connections being replaced serve on until their successors are ready.
    const replaced = [...old.values()].map((l) => l.connection);
    const successors = next.filter((l) => !this.links.includes(l)).map((l) => l.connection);
    this.links = next;
    for (const c of successors) c.start();
    for (const c of replaced) this.retireWhenReplaced(c, successors, config.timeouts.shutdownGrace);
    return { started, kept: next.length - started, retired: replaced.length };
  }

  /** The PAC file for `config`: the one already fetched forgotten (a reload fetches it again, once for every relay URL). */
  private sharedPacFile(config: AgentConfig): PacFile | undefined {
    const url = pacUrlOf(config);
    if (!url) return (this.pacFile = undefined);
    if (this.pacFile?.url === url && this.pacFile.timeoutMs === config.timeouts.connect) this.pacFile.refresh();
    else this.pacFile = new PacFile(url, config.timeouts.connect);
    return this.pacFile;
  }

  /** Stops every connection from reconnecting (shutdown). */
  stopReconnecting(): void {
    for (const c of this.all()) c.stopReconnecting();
  }

  /** Drains every connection: resolves when each relay confirmed (or `ms` passed). */
  drainAll(reason: string, ms: number): Promise<void> {
    return Promise.all(this.all().map((c) => c.drain(reason, Math.min(DRAIN_CONFIRM_MS, ms)))).then(() => undefined);
  }

  closeAll(reason: string): Promise<void> {
    return Promise.all(this.all().map((c) => c.close(reason, CLOSE_HANDSHAKE_MS))).then(() => undefined);
  }

  private all(): RelayGroup[] {
    return [...this.links.map((l) => l.connection), ...this.retiring];
  }

  /**
   * Waits until one of `successors` is ready (none: at once), then lets
   * `old` leave without losing a request (drain, finish, close).
   */
  private retireWhenReplaced(old: RelayGroup, successors: RelayGroup[], grace: number): void {
    this.retiring.add(old);
    const retire = (): void => {
      void old.retire('agent reloaded its config', grace).finally(() => this.retiring.delete(old));
    };
    if (successors.length === 0 || !old.connected) {
      retire();
      return;
    }
    const onReady = (): void => {
      for (const s of successors) s.off('ready', onReady);
      retire();
    };
    for (const s of successors) s.once('ready', onReady);
  }
}
