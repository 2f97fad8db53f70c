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
import { untrusted } from '../src/log-text.js';
import type { Logger } from '../src/log.js';
import { MuxSession } from '../src/mux/session.js';
import type { Exchange } from '../src/mux/exchange.js';
import { CloseCode, FATAL_CLOSE_CODES } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import type { RelayDial } from './forward-proxy.js';
import { afterLinkEnd, canMove, isServing, stoppedFrom, type RelayConnectionState } from './relay-connection-state.js';
import { dialRelay } from './relay-dial.js';
import { closeLink, drainSession } from './relay-drain.js';
import { describeClose, type RelayContext, type RelayProblem } from './relay-errors.js';
import { helloMessage, onControlMessage, readReady, type ReadyInfo } from './relay-messages.js';
import { ReconnectSchedule } from './relay-reconnect.js';
import { logReady, statusName, type RelayConnectionStatus } from './relay-status.js';
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
  private attempt = 0;
  private readyTimer: NodeJS.Timeout | null = null;
  private connectionId: string | undefined;
  /** The relay node this connection reached (in a cluster). */
  node: string | undefined;
  private readySince: Date | undefined;
  private reconnects = 0;
  private lastProblem: RelayConnectionStatus['lastProblem'];

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly dial: RelayDial,
    private readonly ctx: RelayContext,
    private readonly onExchange: (exchange: Exchange) => void,
  ) {
    super();
    this.reconnect = new ReconnectSchedule(config.reconnect, log);
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
    const { connected } = this;
    const session = connected ? this.session : null;
    return {
      relay: redactUrl(this.config.relay),
      node: connected ? this.node : undefined,
      state: statusName(this.current, this.session?.isOpen ?? false),
      connectionId: connected ? this.connectionId : undefined,
      connectedSince: connected ? this.readySince?.toISOString() : undefined,
      attempts: this.attempt,
      reconnects: this.reconnects,
      openExchanges: session?.exchangeCount ?? 0,
      bytesIn: session?.bytesIn ?? 0,
      bytesOut: session?.bytesOut ?? 0,
      lastProblem: this.lastProblem,
    };
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

  /** Logs a problem and keeps it for the status page. */
  private problem(p: RelayProblem, extra: Record<string, unknown> = {}): void {
    this.log[p.level]({ ...p.fields, ...extra }, p.msg);
    const detail = typeof p.fields.detail === 'string' ? p.fields.detail : typeof p.fields.reason === 'string' ? p.fields.reason : undefined;
    this.lastProblem = { at: new Date().toISOString(), message: detail ? `${p.msg}: ${detail}` : p.msg, code: p.fields.code };
  }

  private connect(): void {
    if (!this.setState('dialling')) return;
    this.attempt++;
    const ws = dialRelay(this.config, this.dial, this.ctx, this.log, this.attempt, this.reconnect.plannedDial, {
      open: (opened) => this.onOpen(opened),
      failed: (problem) => this.onDialFailed(ws, problem),
      refused: (res) => this.reconnect.refused(res),
    });
    this.ws = ws;
  }

  private onDialFailed(ws: WebSocket, problem: RelayProblem): void {
    if (this.ws === ws) this.ws = null;
    if (this.current !== 'dialling') return; // stopped: an abandoned dial is no problem
    this.problem(problem, { attempt: this.attempt });
    this.setState('waiting');
    this.reconnect.schedule(false, this.attempt + 1, () => this.connect());
  }

  private onOpen(ws: WebSocket): void {
    if (this.current !== 'dialling') {
      ws.terminate();
      return;
    }
    const { config } = this;
    const session = new MuxSession(ws, {
      role: 'agent',
      window: config.streamWindow,
      maxIncoming: config.limits.maxStreams,
      heartbeat: config.heartbeat,
    });
    this.session = session;
    this.setState('handshaking');
    session.on('exchange', (exchange) => this.onExchange(exchange));
    session.on('problem', (problem) => this.log.warn({ problem: untrusted(problem, 300) }, 'relay broke the tunnel protocol'));
    session.on('control', (message) => onControlMessage(message, this.log, this.node, {
      ready: (m) => this.onReady(m),
      drained: () => this.emit('drained'),
      goaway: () => this.emit('goaway'),
      cluster: (nodes) => this.emit('cluster', nodes),
    }));
    session.on('close', (code, reason) => this.onSessionClose(ws, code, reason));
    session.sendControl(helloMessage(config));
    this.readyTimer = setTimeout(() => {
      this.log.warn({ hint: 'check that relay: in agent.yaml points at a ctbridge relay of the same version' }, 'relay did not answer the hello');
      session.close(CloseCode.HANDSHAKE_TIMEOUT, 'no ready from the relay');
    }, config.timeouts.connect);
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
    this.connectionId = info.connectionId;
    this.readySince = new Date();
    this.reconnect.reset();
    this.setState(this.current === 'handshaking' ? 'ready' : 'leaving');
    // The group logs 'tunnel ready' (logReady) unless it recycles this connection at once.
    this.emit('ready', info);
  }

  private onSessionClose(ws: WebSocket, code: number, reason: string): void {
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = null;
    const was = this.current;
    if (isServing(was)) this.reconnects++;
    this.session = null;
    if (this.ws === ws) this.ws = null;
    // A link this side let go of on purpose (leaving, stopped, recycled) is no problem to log.
    if (was === 'handshaking' || was === 'ready') this.problem(describeClose(code, reason, this.ctx));
    const next = afterLinkEnd(was);
    if (next !== was) this.setState(next);
    this.emit('disconnect', code, reason);
    // A refusal that retrying cannot fix is still retried (the relay's config may change), but slowly.
    if (next === 'waiting') this.reconnect.schedule(FATAL_CLOSE_CODES.has(code), this.attempt + 1, () => this.connect());
  }
}
