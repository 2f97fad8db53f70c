/**
 * The agent's one outbound WebSocket to the relay: dial (directly or through
 * a forward proxy), say hello, wait for ready, hand the relay's exchanges
 * on, and reconnect forever with full-jitter backoff. Every way this can
 * fail is logged once per attempt with a plain hint (relay-errors.ts).
 *
 * Leaving without losing a request: `drain()` tells the relay to open no
 * more exchanges here and resolves when the relay confirms (`drained`);
 * everything opened before that confirmation is served.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import { Backoff } from '../src/backoff.js';
import { retryAfterDelayMs } from '../src/http/retry-after.js';
import type { AgentConfig } from '../src/config/index.js';
import { untrusted } from '../src/log-text.js';
import type { Logger } from '../src/log.js';
import { MuxSession } from '../src/mux/session.js';
import type { Exchange } from '../src/mux/exchange.js';
import { CloseCode, FATAL_CLOSE_CODES, PROTOCOL_VERSION, SOFTWARE_VERSION, SUBPROTOCOL, type DrainMessage, type HelloMessage } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import type { RelayDial } from './forward-proxy.js';
import { readErrorReason, withRefusal } from './relay-error-body.js';
import { CLOSE_HANDSHAKE_MS, DRAIN_CONFIRM_MS } from './relay-timeouts.js';
import { describeClose, describeConnectError, describeHttpStatus, timeoutProblem, type RelayContext, type RelayProblem } from './relay-errors.js';


/** Largest WebSocket message accepted from the relay. */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

export interface ReadyInfo {
  connectionId: string;
  publicUrls: Record<string, string>;
  /** In a cluster: the relay node this connection reached, and every node's id. */
  node?: string;
  nodes?: string[];
}

function nodeList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string').slice(0, 256).map((n) => n.slice(0, 63)) : undefined;
}

/** What `ctbridge status` and the agent's status page show of one relay connection. */
export interface RelayConnectionStatus {
  relay: string;
  /** The relay node it reached (in a cluster). */
  node?: string;
  state: 'connected' | 'connecting' | 'waiting to reconnect' | 'stopped';
  connectionId: string | undefined;
  connectedSince: string | undefined;
  attempts: number;
  /** Times the connection was lost after it had been ready. */
  reconnects: number;
  openExchanges: number;
  bytesIn: number;
  bytesOut: number;
  /** The last problem logged for this connection (refusal, unreachable, lost). */
  lastProblem: { at: string; message: string; code: string | undefined } | undefined;
}

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
  private readonly backoff: Backoff;
  private ws: WebSocket | null = null;
  private session: MuxSession | null = null;
  private isReady = false;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  private connectionId: string | undefined;
  /** The relay node this connection reached (in a cluster). */
  node: string | undefined;
  /** A close this side asked for on purpose (retire with reconnect): not a problem to log. */
  private quietClose = false;
  /** This dial follows a planned recycle: logged at debug. */
  private plannedDial = false;
  /** retire() was called on this connection: it is on its way out (and maybe back in, elsewhere). */
  private leaving = false;
  /** A one-off delay before the next dial (retire with reconnect). */
  private nextDelay: number | undefined;
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
    this.backoff = new Backoff(config.reconnect.initialDelay, config.reconnect.maxDelay);
  }

  /** The relay answered `ready` and the connection is still up. */
  get connected(): boolean {
    return this.isReady && (this.session?.isOpen ?? false);
  }

  /** The session while connected (relay answered `ready`, connection up): egress opens its streams on it. */
  get readySession(): MuxSession | undefined {
    return this.connected ? (this.session ?? undefined) : undefined;
  }

  status(): RelayConnectionStatus {
    const session = this.connected ? this.session : null;
    return {
      relay: redactUrl(this.config.relay),
      node: this.connected ? this.node : undefined,
      state: this.connected ? 'connected' : this.stopped ? 'stopped' : this.retryTimer ? 'waiting to reconnect' : 'connecting',
      connectionId: this.connected ? this.connectionId : undefined,
      connectedSince: this.connected ? this.readySince?.toISOString() : undefined,
      attempts: this.attempt,
      reconnects: this.reconnects,
      openExchanges: session?.exchangeCount ?? 0,
      bytesIn: session?.bytesIn ?? 0,
      bytesOut: session?.bytesOut ?? 0,
      lastProblem: this.lastProblem,
    };
  }

  /** Leaving its relay node (retire() was called); a new dial clears it. */
  get retiring(): boolean {
    return this.leaving;
  }

  /** The lines an IT admin waits for: this connection serves the tunnels, at these public URLs. */
  logReady(info: ReadyInfo): void {
    const node = info.node !== undefined ? { node: info.node } : {};
    this.log.info({ connectionId: info.connectionId, ...node, tunnels: Object.keys(this.config.tunnels), publicUrls: info.publicUrls }, 'tunnel ready');
    for (const tunnel of Object.values(this.config.tunnels)) {
      this.log.info({ tunnel: tunnel.name, publicUrl: info.publicUrls[tunnel.name], target: redactUrl(tunnel.target) }, 'serving tunnel');
    }
  }

  /** Exchanges open on this connection now. */
  get openExchanges(): number {
    return this.session?.exchangeCount ?? 0;
  }

  /** Logs a problem and keeps it for the status page. */
  private problem(p: RelayProblem, extra: Record<string, unknown> = {}): void {
    this.log[p.level]({ ...p.fields, ...extra }, p.msg);
    const detail = typeof p.fields.detail === 'string' ? p.fields.detail : typeof p.fields.reason === 'string' ? p.fields.reason : undefined;
    this.lastProblem = { at: new Date().toISOString(), message: detail ? `${p.msg}: ${detail}` : p.msg, code: p.fields.code };
  }

  start(): void {
    this.connect();
  }

  /** No more attempts; an attempt still dialing is abandoned. The open session (if any) stays up. */
  stopReconnecting(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws && !this.session) this.ws.terminate();
  }

  /**
   * Tells the relay to open no more exchanges here; resolves once it has
   * confirmed (every exchange it opened before is already here), the
   * connection is gone, or `ms` passed.
   */
  drain(reason: string, ms: number): Promise<void> {
    // Also before `ready` has arrived: the relay may already have sent exchanges behind it.
    const session = this.session;
    if (!session?.isOpen) return Promise.resolve();
    const message: DrainMessage = { type: 'drain', reason };
    session.sendControl(message);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('drained', done);
        session.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.once('drained', done);
      session.once('close', done);
    });
  }

  /**
   * Leaves this relay without losing a request: drain, let the open
   * exchanges finish (≤ `grace`), close. With `reconnect`, dial again
   * afterwards (through a load balancer: most likely another node).
   */
  async retire(reason: string, grace: number, reconnect = false, reconnectAfterMs?: number): Promise<void> {
    if (!reconnect) this.stopReconnecting();
    this.leaving = true;
    this.nextDelay = reconnectAfterMs;
    await this.drain(reason, DRAIN_CONFIRM_MS);
    // The exchanges open on this session finish (at most `grace`).
    await this.session?.whenIdle(grace);
    if (reconnect) {
      this.quietClose = true;
      this.session?.close(CloseCode.NORMAL, reason);
    } else {
      await this.close(reason, CLOSE_HANDSHAKE_MS);
    }
  }

  /** Closes the WebSocket (code 1000); terminates it if the relay does not answer within `ms`. */
  async close(reason: string, ms: number): Promise<void> {
    this.stopReconnecting();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const timer = setTimeout(() => ws.terminate(), Math.max(ms, 0));
    if (this.session) this.session.close(CloseCode.NORMAL, reason);
    else ws.terminate();
    await closed;
    clearTimeout(timer);
  }

  private connect(): void {
    if (this.stopped) return;
    this.leaving = false;
    this.attempt++;
    const { config, dial } = this;
    this.log[this.plannedDial ? 'debug' : 'info']({ relay: redactUrl(config.relay), via: dial.proxy ? dial.proxy.display : dial.pac ? `PAC file ${dial.pac}` : 'direct', attempt: this.attempt }, 'connecting to relay');
    const ws = new WebSocket(config.relay, [SUBPROTOCOL], {
      perMessageDeflate: false,
      // A zero mask: ws then skips masking here and unmasking on the relay. Masking
      // protects browsers' peers from cache poisoning; this client is not a browser.
      generateMask: leaveMaskZero,
      maxPayload: MAX_PAYLOAD,
      handshakeTimeout: config.timeouts.connect,
      followRedirects: false,
      headers: { authorization: `Bearer ${config.token}`, 'user-agent': SOFTWARE_VERSION },
      ...(dial.agent ? { agent: dial.agent } : {}),
      ...(dial.ca ? { ca: dial.ca } : {}),
    });
    this.ws = ws;
    let problem: RelayProblem | undefined;
    let opened = false;
    // handshakeTimeout starts only once a socket exists; through a proxy that is after CONNECT. Bound the whole dial.
    const dialTimer = setTimeout(() => {
      problem ??= timeoutProblem(this.ctx);
      ws.terminate();
    }, config.timeouts.connect);
    ws.on('unexpected-response', (_req, res) => {
      // A proxy's own refusal of CONNECT arrives as an error (ProxyRefusal); this answer is from the relay's side.
      const p = describeHttpStatus(res, this.ctx);
      problem ??= p;
      // A relay admitting a reconnect storm (503 CTB_RELAY_BUSY) says when to come back: that, jittered, not the growing backoff.
      if (res.statusCode === 503) this.nextDelay ??= retryAfterDelayMs(res.headers['retry-after']);
      // A ctbridge relay says why in a JSON error body; read a little of it, then give up on this attempt.
      readErrorReason(res, (refusal) => {
        withRefusal(p, refusal);
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      if (!opened) problem ??= describeConnectError(err, this.ctx);
    });
    ws.once('open', () => {
      opened = true;
      clearTimeout(dialTimer);
      this.onOpen(ws);
    });
    ws.once('close', () => {
      clearTimeout(dialTimer);
      if (opened) return; // the session's 'close' handles it
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      const p = problem ?? describeConnectError(new Error('connection closed during the handshake'), this.ctx);
      this.problem(p, { attempt: this.attempt });
      this.scheduleReconnect(false);
    });
  }

  private onOpen(ws: WebSocket): void {
    const { config } = this;
    const session = new MuxSession(ws, {
      role: 'agent',
      window: config.streamWindow,
      maxIncoming: config.limits.maxStreams,
      heartbeat: config.heartbeat,
    });
    this.session = session;
    session.on('exchange', (exchange) => this.onExchange(exchange));
    session.on('problem', (problem) => this.log.warn({ problem: untrusted(problem, 300) }, 'relay broke the tunnel protocol'));
    session.on('control', (message) => this.onControl(message));
    session.on('close', (code, reason) => this.onSessionClose(ws, code, reason));
    const hello: HelloMessage = {
      type: 'hello',
      version: PROTOCOL_VERSION,
      tunnels: Object.keys(config.tunnels),
      software: SOFTWARE_VERSION,
      hostname: hostname(),
      window: config.streamWindow,
    };
    session.sendControl(hello);
    this.readyTimer = setTimeout(() => {
      this.log.warn({ hint: 'check that relay: in agent.yaml points at a ctbridge relay of the same version' }, 'relay did not answer the hello');
      session.close(CloseCode.HANDSHAKE_TIMEOUT, 'no ready from the relay');
    }, config.timeouts.connect);
  }

  private onControl(message: Record<string, unknown>): void {
    switch (message.type) {
      case 'ready': {
        if (this.readyTimer) clearTimeout(this.readyTimer);
        this.readyTimer = null;
        this.session?.setPeerWindow(message.window);
        const info: ReadyInfo = {
          connectionId: typeof message.connectionId === 'string' ? message.connectionId : '',
          publicUrls: isStringRecord(message.publicUrls) ? message.publicUrls : {},
        };
        if (typeof message.node === 'string') info.node = message.node.slice(0, 63);
        const nodes = nodeList(message.nodes);
        if (nodes) info.nodes = nodes;
        this.node = info.node;
        if (message.version !== PROTOCOL_VERSION) {
          this.log.warn({ relayVersion: message.version, agentVersion: PROTOCOL_VERSION }, 'relay speaks another protocol version');
        }
        this.isReady = true;
        this.connectionId = info.connectionId;
        this.readySince = new Date();
        this.backoff.reset();
        // The group logs 'tunnel ready' (logReady) unless it recycles this connection at once.
        this.emit('ready', info);
        break;
      }
      case 'drained':
        this.emit('drained');
        break;
      case 'goaway':
        this.log.info({ reason: untrusted(message.reason), node: this.node }, 'relay is going away');
        this.emit('goaway');
        break;
      case 'cluster': {
        const nodes = nodeList(message.nodes);
        if (nodes) this.emit('cluster', nodes);
        break;
      }
      default:
        this.log.debug({ type: message.type }, 'ignored unknown control message');
    }
  }

  private onSessionClose(ws: WebSocket, code: number, reason: string): void {
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = null;
    if (this.isReady) this.reconnects++;
    this.isReady = false;
    this.session = null;
    if (this.ws === ws) this.ws = null;
    if (this.quietClose) this.quietClose = false;
    else if (!this.stopped) this.problem(describeClose(code, reason, this.ctx));
    this.emit('disconnect', code, reason);
    if (!this.stopped) this.scheduleReconnect(FATAL_CLOSE_CODES.has(code));
  }

  /** A refusal that retrying cannot fix is still retried (the relay's config may change), but slowly. */
  private scheduleReconnect(fatal: boolean): void {
    const planned = !fatal && this.nextDelay !== undefined;
    const delayMs = fatal ? this.config.reconnect.maxDelay : this.nextDelay ?? this.backoff.next();
    this.nextDelay = undefined;
    // A connection recycled on purpose (cluster: it reached a node already served) is routine.
    this.log[planned ? 'debug' : 'info']({ attempt: this.attempt + 1, delayMs }, 'reconnecting');
    this.plannedDial = planned;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delayMs);
  }
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

function leaveMaskZero(): void {}
