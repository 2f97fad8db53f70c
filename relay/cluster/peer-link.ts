/**
 * One relay node's connection to another (dialed by this node, to the
 * peer's cluster listener; `wss://` with `cluster.tls`): the way this node
 * sends the peer exchanges for tunnels whose agents are connected there.
 * Reconnects with backoff for as long as the peer is a member.
 *
 *   this node ── node-hello {nodeId, nonce} ──────────▶ peer   (peer-endpoint.ts)
 *             ◀─ node-challenge {nodeId, nonce, proofs}        the peer proves the secret first
 *             ── node-proof {proofs} ─────────────────▶        then this node does
 *             ◀─ node / tunnels / draining ─                   who it is, what it serves
 *             ── exchanges ───────────────────────────▶
 *
 * Nothing but the hello goes to a peer that has not proved the cluster
 * secret on this connection (node-auth.ts): no proof of ours, no exchange,
 * so no caller's request. What the peer announces is checked
 * (peer-announce.ts); a peer that breaks the rules is disconnected with a
 * reason and tried again later.
 */
import { EventEmitter } from 'node:events';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { Backoff } from '../../src/backoff.js';
import type { ClusterTlsConfig } from '../../src/config/index.js';
import type { Logger } from '../../src/log.js';
import { untrusted } from '../../src/log-text.js';
import { MuxSession } from '../../src/mux/session.js';
import { CloseCode, type NodeHelloMessage, type NodeProofMessage } from '../../src/protocol.js';
import { readRefusal } from '../handshake-refusal.js';
import { isNonce, linkProofs, newNonce, tlsBinding, verifyLinkProofs, type LinkTranscript } from './node-auth.js';
import { checkNodeId, checkTunnelList, tunnelsForLog } from './peer-announce.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from './peer-protocol.js';

/**
 * Waits between attempts to link to a peer (ms): exponential with full
 * jitter from 200 ms up to 5 s. Short, because a node that cannot reach a
 * peer forwards nothing to it; a peer that is gone for good leaves the
 * membership (DNS, static list) and is not dialed again.
 */
export const PEER_RECONNECT_DELAY = { initial: 200, max: 5000 } as const;

export interface PeerLinkOptions {
  nodeId: string;
  /** The secrets this node holds now (current first; a reload may change them). */
  secrets: () => readonly string[];
  tls: ClusterTlsConfig | undefined;
  window: number;
  heartbeat: { interval: number; timeout: number };
  /** How long connecting and the whole handshake may take. */
  connectTimeout: number;
}

export interface PeerLinkEvents {
  /** The peer's id, tunnels, readiness or draining changed. */
  change: [];
  /** The address turned out to be this node itself. */
  self: [];
  /** The first attempt to link failed: the node has been tried (see `tried`). */
  tried: [];
}

type State = 'connecting' | 'challenge' | 'announce' | 'ready';

export class PeerLink extends EventEmitter<PeerLinkEvents> {
  nodeId: string | undefined;
  tunnels: ReadonlySet<string> = new Set();
  draining = false;
  private session: MuxSession | undefined;
  private state: State = 'connecting';
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastProblem: string | undefined;
  /** Why this node closed the current connection, if it did (kept as lastProblem). */
  private refusedWith: string | undefined;
  private readonly backoff = new Backoff(PEER_RECONNECT_DELAY.initial, PEER_RECONNECT_DELAY.max);

  constructor(
    readonly address: string,
    private readonly opts: PeerLinkOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  private get ready(): boolean {
    return this.state === 'ready';
  }

  /** Connected, authenticated both ways, introduced, and taking exchanges. */
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
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.session?.close(CloseCode.NORMAL, 'node leaving');
  }

  /** Drops the link and dials again at once (the cluster secret changed: prove the new one). */
  relink(reason: string): void {
    if (this.stopped) return;
    this.backoff.reset();
    if (this.session) this.session.close(CloseCode.GOING_AWAY, reason);
    else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.dial();
    }
  }

  private dial(): void {
    if (this.stopped) return;
    /** Why this attempt failed before the WebSocket opened (becomes lastProblem). */
    let problem: string | undefined;
    const { tls } = this.opts;
    const options: ClientOptions = {
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: this.opts.connectTimeout,
      generateMask: () => undefined,
      followRedirects: false,
    };
    if (tls) {
      Object.assign(options, { cert: tls.cert.text, key: tls.key.text, ca: tls.ca?.text, rejectUnauthorized: true });
      // Peers are often dialed by IP (DNS answers): check their certificate for serverName instead.
      const name = tls.serverName;
      if (name) Object.assign(options, { servername: name, checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert) });
    }
    const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://${this.address}${PEER_PATH}`, [PEER_SUBPROTOCOL], options);
    ws.on('error', (err) => {
      problem ??= err.message;
    });
    // Refused before the WebSocket opened (address not in its cluster.peers, another version): its JSON body says why.
    ws.on('unexpected-response', (_req, res) => {
      void readRefusal(res).then((why) => {
        problem = `refused with HTTP ${res.statusCode}${why ? `: ${why}` : ''}`;
        this.lastProblem = problem;
        this.log.warn({ peer: this.address, status: res.statusCode, reason: why }, 'peer node refused the link before it opened');
        ws.terminate();
      });
    });
    let binding: string | undefined;
    ws.once('upgrade', (res) => (binding = tlsBinding(res.socket)));
    ws.once('open', () => this.onOpen(ws, binding));
    ws.once('close', () => {
      if (this.session) return; // the session's close handles it
      this.lastProblem = problem ?? 'the connection closed before the WebSocket opened';
      this.retry();
    });
  }

  private onOpen(ws: WebSocket, binding: string | undefined): void {
    const session = new MuxSession(ws, { role: 'relay', peerName: 'another relay node', window: this.opts.window, maxIncoming: 0, heartbeat: this.opts.heartbeat });
    this.session = session;
    this.state = 'challenge';
    this.refusedWith = undefined;
    const dialerNonce = newNonce();
    session.sendControl({ type: 'node-hello', nodeId: this.opts.nodeId, nonce: dialerNonce } satisfies NodeHelloMessage);
    const timer = setTimeout(() => this.refuse(session, CloseCode.HANDSHAKE_TIMEOUT, 'the peer did not complete the node handshake in time'), this.opts.connectTimeout);
    session.on('problem', (problem) => this.log.warn({ peer: this.address, nodeId: this.nodeId ?? null, problem: untrusted(problem) }, 'peer node broke the tunnel protocol'));
    session.on('control', (msg) => {
      if (this.session !== session) return;
      if (this.state === 'challenge') {
        if (this.onChallenge(session, msg, dialerNonce, binding)) clearTimeout(timer);
      } else {
        this.onControl(session, msg);
      }
    });
    session.on('close', (code, reason) => {
      clearTimeout(timer);
      const wasReady = this.ready;
      this.session = undefined;
      this.state = 'connecting';
      this.tunnels = new Set();
      this.lastProblem = this.refusedWith ?? `closed (${code}${reason ? `: ${untrusted(reason)}` : ''})`;
      if (wasReady) {
        this.log.info({ peer: this.address, nodeId: this.nodeId, closeCode: code, reason: untrusted(reason) }, 'peer node disconnected');
        this.emit('change');
      } else if (code === CloseCode.TOKEN_INVALID) {
        this.log.warn({ peer: this.address, closeCode: code, reason: untrusted(reason) }, 'peer node refused this node: check cluster.secret on both nodes');
      }
      this.retry();
    });
  }

  /** The peer's challenge: it must prove the secret before this node proves anything. True when the handshake moved on. */
  private onChallenge(session: MuxSession, msg: Record<string, unknown>, dialerNonce: string, binding: string | undefined): boolean {
    if (msg.type !== 'node-challenge') {
      this.refuse(session, CloseCode.BAD_HELLO, `expected node-challenge, got control message '${untrusted(msg.type, 32)}'`);
      return false;
    }
    const id = checkNodeId(msg.nodeId);
    if (!id.ok) {
      this.refuse(session, CloseCode.BAD_HELLO, `malformed node-challenge: ${id.problem}`);
      return false;
    }
    if (!isNonce(msg.nonce)) {
      this.refuse(session, CloseCode.BAD_HELLO, 'malformed node-challenge: nonce is not 32 bytes of base64url');
      return false;
    }
    const transcript: LinkTranscript = { dialerNonce, listenerNonce: msg.nonce, dialerId: this.opts.nodeId, listenerId: id.value, tlsBinding: binding };
    const secrets = this.opts.secrets();
    if (!verifyLinkProofs(msg.proofs, secrets, 'listener', transcript)) {
      this.refuse(session, CloseCode.TOKEN_INVALID, `the node at ${this.address} did not prove the cluster secret; nothing is sent to it (check cluster.secret and cluster.peers)`,
        'the listening node did not prove the cluster secret');
      return false;
    }
    if (id.value === this.opts.nodeId) {
      // DNS or the static list names this node too: nothing to connect to here.
      this.stopped = true;
      session.close(CloseCode.NORMAL, 'self');
      this.emit('self');
      return true;
    }
    this.nodeId = id.value;
    this.state = 'announce';
    session.sendControl({ type: 'node-proof', proofs: linkProofs(secrets, 'dialer', transcript) } satisfies NodeProofMessage);
    return true;
  }

  private onControl(session: MuxSession, msg: Record<string, unknown>): void {
    switch (msg.type) {
      case 'node': {
        if (this.state !== 'announce') break;
        if (msg.nodeId !== this.nodeId) return this.refuse(session, CloseCode.BAD_HELLO, 'node message names another node than the challenge did');
        const tunnels = checkTunnelList(msg.tunnels);
        if (!tunnels.ok) return this.refuse(session, CloseCode.BAD_HELLO, `malformed node message: ${tunnels.problem}`);
        this.tunnels = new Set(tunnels.value);
        this.draining = msg.draining === true;
        this.state = 'ready';
        this.backoff.reset();
        this.lastProblem = undefined;
        this.log.info({ peer: this.address, nodeId: this.nodeId, ...tunnelsForLog(this.tunnels) }, 'peer node connected');
        this.emit('change');
        return;
      }
      case 'tunnels': {
        if (this.state !== 'ready') break;
        const tunnels = checkTunnelList(msg.tunnels);
        if (!tunnels.ok) return this.refuse(session, CloseCode.BAD_HELLO, `malformed tunnels message: ${tunnels.problem}`);
        this.tunnels = new Set(tunnels.value);
        this.emit('change');
        return;
      }
      case 'draining':
        if (this.state !== 'ready') break;
        this.draining = true;
        this.log.info({ peer: this.address, nodeId: this.nodeId }, 'peer node draining: no more exchanges go to it');
        this.emit('change');
        return;
      default:
        this.log.debug({ peer: this.address, nodeId: this.nodeId, type: untrusted(msg.type, 32) }, 'ignored a control message from a peer node');
        return;
    }
    this.refuse(session, CloseCode.BAD_HELLO, `control message '${untrusted(msg.type, 32)}' out of order`);
  }

  /**
   * Closes the link and logs why with the peer's address. The peer hears
   * `told`: the reason itself, or, when the reason names this node's config
   * (cluster.secret, cluster.peers) or addresses, a plain sentence (it has
   * not proved the secret).
   */
  private refuse(session: MuxSession, code: number, reason: string, told = reason): void {
    this.refusedWith = reason;
    this.log.warn({ peer: this.address, nodeId: this.nodeId ?? null, reason }, `peer node link closed: ${reason}`);
    session.close(code, told);
  }

  private retry(): void {
    if (++this.failures === 1) this.emit('tried');
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dial();
    }, this.backoff.next());
    this.timer.unref();
  }
}
