/**
 * The agent's one outbound WebSocket to a relay (its counterpart on the
 * relay: relay/agent-endpoint.ts), with one lifecycle state
 * (relay-connection-state.ts) moved in one place, setState(). It dials
 * (relay-dial.ts), says hello and waits for ready (relay-messages.ts), hands
 * the relay's exchanges on, and dials again forever (relay-reconnect.ts).
 * Every way this can fail is logged once per attempt with a plain hint
 * (relay-errors.ts).
 *
 * Leaving without losing a request (relay-drain.ts): `drain()` tells the
 * relay to open no more exchanges here and resolves when the relay confirms
 * (`drained`); everything opened before that confirmation is served.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import type { MuxSession } from '../src/mux/session.js';
import type { Exchange } from '../src/mux/exchange.js';
import { CloseCode, FATAL_CLOSE_CODES } from '../src/protocol.js';
import type { RelayDial } from './forward-proxy.js';
import { afterLinkEnd, canMove, isServing, stoppedFrom, type RelayConnectionState } from './relay-connection-state.js';
import { dialRelay } from './relay-dial.js';
import { closeLink, drainSession } from './relay-drain.js';
import { describeClose, type RelayContext, type RelayProblem } from './relay-errors.js';
import { readReady, startSession, type ReadyInfo } from './relay-messages.js';
import { ReconnectSchedule } from './relay-reconnect.js';
import { ConnectionRecord, logReady, type RelayConnectionStatus } from './relay-status.js';
import { CLOSE_HANDSHAKE_MS, DRAIN_CONFIRM_MS } from './relay-timeouts.js';

export interface RelayConnectionEvents {
  ready: [info: ReadyInfo];
  disconnect: [code: number, reason: string];
  /** In a cluster: the nodes now. */
  cluster: [nodes: string[]];
  /** The relay node is leaving: connect again elsewhere. */
  goaway: [];
  /** The relay confirmed a drain: it opens no more exchanges here. */
  drained: [];
}

export class RelayConnection extends EventEmitter<RelayConnectionEvents> {
  private current: RelayConnectionState = 'idle';
  private readonly reconnect: ReconnectSchedule;
  private ws: WebSocket | null = null;
  private session: MuxSession | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  /** The relay node this connection reached (in a cluster). */
  node: string | undefined;
  private readonly record: ConnectionRecord;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly dial: RelayDial,
    private readonly ctx: RelayContext,
    private readonly onExchange: (exchange: Exchange) => void,
  ) {
    super();
    this.reconnect = new ReconnectSchedule(config.reconnect, log);
    this.record = new ConnectionRecord(config.relay);
  }

  /** Where this connection is in its lifecycle (relay-connection-state.ts). */
  get state(): RelayConnectionState {
    return this.current;
  }

  /** The relay answered `ready` and the link is still up (not closing). */
  get connected(): boolean {
    return isServing(this.current) && (this.session?.isOpen ?? false);
  }

  /** The session while connected (relay answered `ready`, connection up): egress opens its streams on it. */
  get readySession(): MuxSession | undefined {
    return this.connected ? (this.session ?? undefined) : undefined;
  }

  /** On its way out of its relay node (retire() or a stop after ready); a new dial ends it. */
  get retiring(): boolean {
    return this.current === 'leaving' || this.current === 'recycling';
  }

  /** Exchanges open on this connection now. */
  get openExchanges(): number {
    return this.session?.exchangeCount ?? 0;
  }

  status(): RelayConnectionStatus {
    return this.record.status(this.current, this.session, this.connected, this.node);
  }

  /** The lines an IT admin waits for: this connection serves the tunnels, at these public URLs. */
  logReady(info: ReadyInfo): void {
    logReady(this.log, this.config, info);
  }

  start(): void {
    if (this.current === 'idle') this.connect();
  }

  /** No more attempts; an attempt still dialling is abandoned. The open session (if any) stays up. */
  stopReconnecting(): void {
    if (this.current === 'leaving' || this.current === 'stopped') return;
    this.reconnect.cancel();
    this.setState(stoppedFrom(this.current));
    if (this.ws && !this.session) this.ws.terminate();
  }

  /**
   * Tells the relay to open no more exchanges here; resolves once it has
   * confirmed (every exchange it opened before is already here), the
   * connection is gone, or `ms` passed.
   */
  drain(reason: string, ms: number): Promise<void> {
    return drainSession(this.session, reason, ms, this);
  }

  /**
   * Leaves this relay without losing a request: drain, let the open
   * exchanges finish (≤ `grace`), close. With `reconnect`, dial again
   * afterwards (through a load balancer: most likely another node).
   */
  async retire(reason: string, grace: number, reconnect = false, reconnectAfterMs?: number): Promise<void> {
    if (!reconnect) this.stopReconnecting();
    else if (this.current === 'ready') {
      this.reconnect.delayNextDial(reconnectAfterMs);
      this.setState('recycling');
    }
    await this.drain(reason, DRAIN_CONFIRM_MS);
    // The exchanges open on this session finish (at most `grace`).
    await this.session?.whenIdle(grace);
    if (reconnect) this.session?.close(CloseCode.NORMAL, reason);
    else await this.close(reason, CLOSE_HANDSHAKE_MS);
  }

  /** Closes the WebSocket (code 1000); terminates it if the relay does not answer within `ms`. */
  async close(reason: string, ms: number): Promise<void> {
    this.stopReconnecting();
    await closeLink(this.ws, this.session, reason, ms);
  }

  /** The one place the state changes: only along relay-connection-state.ts's table; anything else is a bug, logged and refused. */
  private setState(next: RelayConnectionState): boolean {
    const from = this.current;
    if (!canMove(from, next)) {
      this.log.error({ from, to: next }, 'relay connection refused a state change it does not allow (a bug in the agent)');
      return false;
    }
    this.current = next;
    this.log.debug({ from, to: next }, 'relay connection state');
    return true;
  }

  private connect(): void {
    if (!this.setState('dialling')) return;
    const attempt = ++this.record.attempts;
    const ws = dialRelay(this.config, this.dial, this.ctx, this.log, attempt, this.reconnect.plannedDial, {
      open: (opened) => this.onOpen(opened),
      failed: (problem) => this.onDialFailed(ws, problem),
      refused: (res) => this.reconnect.refused(res),
    });
    this.ws = ws;
  }

  private onDialFailed(ws: WebSocket, problem: RelayProblem): void {
    if (this.ws === ws) this.ws = null;
    if (this.current !== 'dialling') return; // stopped: an abandoned dial is no problem
    this.record.problem(this.log, problem, { attempt: this.record.attempts });
    this.setState('waiting');
    this.reconnect.schedule(false, this.record.attempts + 1, () => this.connect());
  }

  private onOpen(ws: WebSocket): void {
    if (this.current !== 'dialling') {
      ws.terminate();
      return;
    }
    this.setState('handshaking');
    const { session, readyTimer } = startSession(ws, this.config, this.log, () => this.node, {
      exchange: (exchange) => this.onExchange(exchange),
      ready: (message) => this.onReady(message),
      drained: () => this.emit('drained'),
      goaway: () => this.emit('goaway'),
      cluster: (nodes) => this.emit('cluster', nodes),
      close: (code, reason) => this.onSessionClose(ws, code, reason),
    });
    this.session = session;
    this.readyTimer = readyTimer;
  }

  private onReady(message: Record<string, unknown>): void {
    // A link told to stop during its handshake still takes its ready: it then serves what the relay sends until it closes.
    if (this.current !== 'handshaking' && this.current !== 'stopped') {
      this.log.debug({ state: this.current }, 'ignored a second ready from the relay');
      return;
    }
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = null;
    this.session?.setPeerWindow(message.window);
    const info = readReady(message, this.log);
    this.node = info.node;
    this.record.connectionId = info.connectionId;
    this.record.readySince = new Date();
    this.reconnect.reset();
    this.setState(this.current === 'handshaking' ? 'ready' : 'leaving');
    // The group logs 'tunnel ready' (logReady) unless it recycles this connection at once.
    this.emit('ready', info);
  }

  private onSessionClose(ws: WebSocket, code: number, reason: string): void {
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = null;
    const was = this.current;
    if (isServing(was)) this.record.reconnects++;
    this.session = null;
    if (this.ws === ws) this.ws = null;
    // A link this side let go of on purpose (leaving, stopped, recycled) is no problem to log.
    if (was === 'handshaking' || was === 'ready') this.record.problem(this.log, describeClose(code, reason, this.ctx));
    const next = afterLinkEnd(was);
    if (next !== was) this.setState(next);
    this.emit('disconnect', code, reason);
    // A refusal that retrying cannot fix is still retried (the relay's config may change), but slowly.
    if (next === 'waiting') this.reconnect.schedule(FATAL_CLOSE_CODES.has(code), this.record.attempts + 1, () => this.connect());
  }
}
