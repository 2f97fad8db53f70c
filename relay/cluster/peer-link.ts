/**
 * One relay node's connection to another (dialed by this node, to the
 * peer's cluster listener): the way this node sends the peer exchanges for
 * tunnels whose agents are connected there. The peer tells, on the same
 * connection, who it is, which tunnels it serves now, and when it is
 * leaving. Reconnects with backoff for as long as the peer is a member.
 *
 *   this node ── exchanges ──▶ peer        (peer-endpoint.ts on the other side)
 *             ◀─ node / tunnels / draining ─
 */
import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import { Backoff } from '../../src/backoff.js';
import type { Logger } from '../../src/log.js';
import { untrusted } from '../../src/log-text.js';
import { MuxSession } from '../../src/mux/session.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from './peer-protocol.js';
import { signNodeToken } from './node-auth.js';

export interface PeerLinkOptions {
  nodeId: string;
  secret: string;
  window: number;
  heartbeat: { interval: number; timeout: number };
  connectTimeout: number;
}

export interface PeerLinkEvents {
  /** The peer's id, tunnels, readiness or draining changed. */
  change: [];
  /** The address turned out to be this node itself. */
  self: [];
}

export class PeerLink extends EventEmitter<PeerLinkEvents> {
  nodeId: string | undefined;
  tunnels: ReadonlySet<string> = new Set();
  draining = false;
  private session: MuxSession | undefined;
  private ready = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastProblem: string | undefined;
  private readonly backoff = new Backoff(200, 5000);

  constructor(
    readonly address: string,
    private readonly opts: PeerLinkOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Connected, introduced, and taking exchanges. */
  get usable(): boolean {
    return this.ready && !this.draining && !!this.session?.isOpen;
  }

  /** Tried at least once (connected, or failed): the first membership view is complete. */
  get tried(): boolean {
    return this.ready || this.failures > 0 || this.stopped;
  }

  /** The session to open exchanges on. */
  get sessionNow(): MuxSession | undefined {
    return this.usable ? this.session : undefined;
  }

  status(): { address: string; nodeId: string | undefined; state: string; tunnels: string[]; lastProblem: string | undefined } {
    const state = this.usable ? 'connected' : this.ready && this.draining ? 'draining' : this.stopped ? 'stopped' : 'connecting';
    return { address: this.address, nodeId: this.nodeId, state, tunnels: [...this.tunnels].sort(), lastProblem: this.lastProblem };
  }

  start(): void {
    void this.dial();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.session?.close(1000, 'node leaving');
  }

  private async dial(): Promise<void> {
    if (this.stopped) return;
    const token = await signNodeToken(this.opts.nodeId, this.opts.secret);
    const ws = new WebSocket(`ws://${this.address}${PEER_PATH}`, [PEER_SUBPROTOCOL], {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: this.opts.connectTimeout,
      generateMask: () => undefined,
    });
    ws.on('error', (err) => {
      this.lastProblem = err.message;
    });
    ws.once('open', () => this.onOpen(ws));
    ws.once('close', () => {
      if (this.session) return; // the session's close handles it
      this.retry();
    });
  }

  private onOpen(ws: WebSocket): void {
    const session = new MuxSession(ws, { role: 'relay', window: this.opts.window, maxIncoming: 0, heartbeat: this.opts.heartbeat });
    this.session = session;
    session.sendControl({ type: 'node', nodeId: this.opts.nodeId });
    session.on('problem', (problem) => this.log.warn({ peer: this.address, problem: untrusted(problem) }, 'peer node broke the tunnel protocol'));
    session.on('control', (msg) => this.onControl(msg));
    session.on('close', (code, reason) => {
      const wasReady = this.ready;
      this.session = undefined;
      this.ready = false;
      this.tunnels = new Set();
      this.lastProblem = `closed (${code}${reason ? `: ${untrusted(reason)}` : ''})`;
      if (wasReady) {
        this.log.info({ peer: this.address, nodeId: this.nodeId, closeCode: code, reason: untrusted(reason) }, 'peer node disconnected');
        this.emit('change');
      }
      this.retry();
    });
  }

  private onControl(msg: Record<string, unknown>): void {
    const tunnels = Array.isArray(msg.tunnels) ? new Set(msg.tunnels.filter((t): t is string => typeof t === 'string').slice(0, 10_000)) : undefined;
    switch (msg.type) {
      case 'node': {
        const id = typeof msg.nodeId === 'string' ? msg.nodeId.slice(0, 63) : undefined;
        if (id === this.opts.nodeId) {
          // DNS lists this node too: nothing to connect to here.
          this.stopped = true;
          this.session?.close(1000, 'self');
          this.emit('self');
          return;
        }
        this.nodeId = id;
        this.tunnels = tunnels ?? new Set();
        this.draining = msg.draining === true;
        this.ready = true;
        this.backoff.reset();
        this.lastProblem = undefined;
        this.log.info({ peer: this.address, nodeId: id, tunnels: [...this.tunnels] }, 'peer node connected');
        this.emit('change');
        return;
      }
      case 'tunnels':
        if (tunnels) this.tunnels = tunnels;
        this.emit('change');
        return;
      case 'draining':
        this.draining = true;
        this.log.info({ peer: this.address, nodeId: this.nodeId }, 'peer node draining: no more exchanges go to it');
        this.emit('change');
        return;
    }
  }

  private retry(): void {
    this.failures++;
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.dial();
    }, this.backoff.next());
    this.timer.unref();
  }
}
