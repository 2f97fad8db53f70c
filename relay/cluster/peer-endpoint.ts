/**
 * The node-to-node listener (`cluster.listen`, never the public port; HTTPS
 * with `cluster.tls`, requiring client certificates when it names a `ca`).
 * A connection is taken only from an address `cluster.peers` names
 * (peer-addresses.ts), then both sides prove they hold the cluster secret
 * on this connection (node-auth.ts) before anything else: until the
 * dialer's proof checked, this node announces nothing and serves no
 * exchange.
 *
 * To each linked node, this node announces its id, the tunnels its
 * connected agents serve and, on SIGTERM, that it is leaving; and it serves
 * the exchanges they forward by opening the same exchange to one of its own
 * agents and joining the two (src/mux/splice.ts). The forwarding node has
 * already applied the tunnel's policy and set the forwarded headers; they
 * are trusted here only because the link is authenticated.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { clusterSecrets, type ClusterConfig } from '../../src/config/index.js';
import { CtbridgeError } from '../../src/errors.js';
import { peerAddress } from '../../src/http/client-address.js';
import { listenOrExplain } from '../../src/listen.js';
import type { Logger } from '../../src/log.js';
import { untrusted } from '../../src/log-text.js';
import type { Exchange } from '../../src/mux/exchange.js';
import { MuxSession } from '../../src/mux/session.js';
import { splice } from '../../src/mux/splice.js';
import { CloseCode, type NodeChallengeMessage, type NodeDrainingMessage, type NodeMessage, type NodeTunnelsMessage } from '../../src/protocol.js';
import type { AgentRegistry } from '../agent-registry.js';
import { refuseHandshake } from '../handshake-refusal.js';
import { isNonce, linkProofs, newNonce, tlsBinding, verifyLinkProofs, type LinkTranscript } from './node-auth.js';
import type { PeerAddresses } from './peer-addresses.js';
import { checkNodeId } from './peer-announce.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from './peer-protocol.js';

export interface PeerEndpointOptions {
  /** The cluster section as it is now (a reload may change the secrets). */
  cluster: () => ClusterConfig;
  file: string;
  registry: AgentRegistry;
  log: Logger;
  window: () => number;
  heartbeat: () => { interval: number; timeout: number };
  maxIncoming: () => number;
  /** How long a dialing node has to prove the secret. */
  handshakeTimeout: () => number;
  /** Who may dial this listener. */
  addresses: PeerAddresses;
  /** Counts an exchange another node forwarded here. */
  onForwarded?: () => void;
}

export class PeerEndpoint {
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    handleProtocols: (offered) => (offered.has(PEER_SUBPROTOCOL) ? PEER_SUBPROTOCOL : false),
  });
  /** Every connection, authenticated or not (closed on shutdown), with its remote address. */
  private readonly sessions = new Map<MuxSession, string>();
  /** Connections whose dialer proved the secret: they hear announcements and may forward. */
  private readonly linked = new Set<MuxSession>();
  private draining = false;
  private announceScheduled = false;
  private readonly nodeId: string;

  constructor(private readonly opts: PeerEndpointOptions) {
    const { tls, nodeId } = opts.cluster();
    this.nodeId = nodeId;
    const notFound = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('ctbridge cluster listener: nodes only\n');
    };
    this.server = tls
      ? https.createServer({ cert: tls.cert.text, key: tls.key.text, ...(tls.ca ? { ca: tls.ca.text, requestCert: true, rejectUnauthorized: true } : {}) }, notFound)
      : http.createServer(notFound);
    this.server.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket, head));
    this.server.on('tlsClientError', (err: Error, socket) => {
      const why = tls?.ca ? ' (a client certificate from cluster.tls.ca is required)' : '';
      opts.log.warn({ remote: peerAddress(socket), reason: err.message }, `cluster listener refused a connection: TLS handshake failed${why}`);
    });
    opts.registry.on('change', () => this.scheduleAnnounce());
  }

  async listen(): Promise<{ host: string; port: number }> {
    const bound = await listenOrExplain(this.server, this.opts.cluster().listen, { file: this.opts.file, key: 'cluster.listen' });
    return { host: bound.address, port: bound.port };
  }

  /** Tells every node this one is leaving: they stop forwarding to it. */
  drain(): void {
    this.draining = true;
    for (const s of this.linked) s.sendControl({ type: 'draining' } satisfies NodeDrainingMessage);
  }

  /** Closes every node link to this listener (the cluster secret changed: the dialers link again and prove the new one). */
  closeLinks(reason: string): void {
    for (const s of this.sessions.keys()) s.close(CloseCode.GOING_AWAY, reason);
  }

  /** After a reload changed cluster.peers: closes the links from addresses it no longer names. */
  async recheckAddresses(): Promise<number> {
    let closed = 0;
    for (const [s, remote] of this.sessions) {
      if (await this.opts.addresses.allows(remote)) continue;
      this.opts.log.warn({ remote }, 'node link closed: its address is no longer one of cluster.peers');
      s.close(CloseCode.GOING_AWAY, 'this node no longer takes node links from your address');
      closed++;
    }
    return closed;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.keys()) s.close(CloseCode.GOING_AWAY, 'node leaving');
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The tunnels this node's agents serve now (not the draining ones). */
  private localTunnels(): string[] {
    const out = new Set<string>();
    for (const a of this.opts.registry.all()) if (!a.draining && a.session.isOpen) for (const t of a.tunnels) out.add(t);
    return [...out].sort();
  }

  private scheduleAnnounce(): void {
    if (this.announceScheduled) return;
    this.announceScheduled = true;
    setImmediate(() => {
      this.announceScheduled = false;
      const tunnels = this.localTunnels();
      for (const s of this.linked) s.sendControl({ type: 'tunnels', tunnels } satisfies NodeTunnelsMessage);
    });
  }

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const remote = peerAddress(req.socket);
    // The caller has proved nothing: it hears the code, the public sentence and a request id; the why (with config keys) is logged with that id.
    const refuse = (message: string, detail: Record<string, unknown> = {}): void => {
      const requestId = refuseHandshake(socket, new CtbridgeError('CTB_NODE_REFUSED', message));
      this.opts.log.warn({ requestId, remote, ...detail }, `cluster listener refused a connection: ${message}`);
    };
    if (req.url !== PEER_PATH) return refuse('not the node link path', { path: untrusted(req.url) });
    if (!(await this.opts.addresses.allows(remote))) {
      return refuse('its address is not one of cluster.peers (static or DNS); set cluster.peers.acceptAnyAddress if nodes reach each other through NAT');
    }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(PEER_SUBPROTOCOL)) {
      return refuse(`it speaks node protocol ${untrusted(offered.join(', ') || 'none', 64)}, this node speaks ${PEER_SUBPROTOCOL}; run the same ctbridge version on every node`);
    }
    if (socket.destroyed) return;
    const binding = tlsBinding(req.socket);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, remote, binding));
  }

  /**
   * A dialer that passed the address check: it must send node-hello, answer
   * this node's challenge with a valid proof, and open no exchange before.
   */
  private onConnection(ws: WebSocket, remote: string, binding: string | undefined): void {
    const { log } = this.opts;
    const session = new MuxSession(ws, { role: 'agent', peerName: 'the relay node that forwarded the exchange', window: this.opts.window(), maxIncoming: this.opts.maxIncoming(), heartbeat: this.opts.heartbeat() });
    this.sessions.set(session, remote);
    let transcript: LinkTranscript | undefined;
    let nodeId: string | undefined;
    let ready = false;
    /** `told`: what the unproven dialer hears instead of `reason` when the reason names this node's config. */
    const refuse = (code: number, reason: string, told = reason): void => {
      log.warn({ remote, nodeId: nodeId ?? null, reason }, `cluster listener refused a node: ${reason}`);
      session.close(code, told);
    };
    const timer = setTimeout(() => refuse(CloseCode.HANDSHAKE_TIMEOUT, 'no valid node proof within the handshake timeout'), this.opts.handshakeTimeout());
    session.once('close', (code, reason) => {
      clearTimeout(timer);
      this.sessions.delete(session);
      if (this.linked.delete(session)) log.info({ remote, nodeId, closeCode: code, reason: untrusted(reason) }, 'peer node unlinked');
    });
    session.on('problem', (problem) => log.warn({ remote, nodeId: nodeId ?? null, problem: untrusted(problem) }, 'peer node broke the tunnel protocol'));
    session.on('control', (msg) => {
      if (ready) {
        log.debug({ remote, nodeId, type: untrusted(msg.type) }, 'ignored a control message from a peer node');
        return;
      }
      if (msg.type === 'node-hello' && !transcript) {
        const id = checkNodeId(msg.nodeId);
        if (!id.ok) return refuse(CloseCode.BAD_HELLO, `malformed node-hello: ${id.problem}`);
        if (!isNonce(msg.nonce)) return refuse(CloseCode.BAD_HELLO, 'malformed node-hello: nonce is not 32 bytes of base64url');
        nodeId = id.value;
        transcript = { dialerNonce: msg.nonce, listenerNonce: newNonce(), dialerId: nodeId, listenerId: this.nodeId, tlsBinding: binding };
        session.sendControl({
          type: 'node-challenge', nodeId: this.nodeId, nonce: transcript.listenerNonce, proofs: linkProofs(clusterSecrets(this.opts.cluster()), 'listener', transcript),
        } satisfies NodeChallengeMessage);
        return;
      }
      if (msg.type === 'node-proof' && transcript) {
        if (!verifyLinkProofs(msg.proofs, clusterSecrets(this.opts.cluster()), 'dialer', transcript)) {
          return refuse(CloseCode.TOKEN_INVALID, 'the dialing node did not prove the cluster secret (check cluster.secret on both nodes)', 'the dialing node did not prove the cluster secret');
        }
        clearTimeout(timer);
        ready = true;
        this.linked.add(session);
        log.info({ remote, nodeId }, 'peer node linked');
        session.sendControl({ type: 'node', nodeId: this.nodeId, tunnels: this.localTunnels(), draining: this.draining } satisfies NodeMessage);
        return;
      }
      refuse(CloseCode.BAD_HELLO, `expected ${transcript ? 'node-proof' : 'node-hello'}, got control message '${untrusted(msg.type, 32)}'`);
    });
    session.on('exchange', (ex) => {
      if (ready) return this.serve(ex, nodeId!);
      ex.reset(new CtbridgeError('CTB_PROTOCOL', 'no exchange before the node link is authenticated'));
      refuse(CloseCode.TOKEN_INVALID, 'opened an exchange before proving the cluster secret');
    });
  }

  /** An exchange another node forwards: onward to one of this node's agents. */
  private serve(inbound: Exchange, from: string): void {
    const { head } = inbound;
    this.opts.onForwarded?.();
    const picked = this.opts.registry.pick(head.tunnel);
    if (!('agent' in picked)) {
      inbound.reset(new CtbridgeError('CTB_AGENT_NOT_CONNECTED', `no agent for tunnel '${head.tunnel}' is connected to relay node ${this.nodeId} any more`));
      return;
    }
    const agent = picked.agent;
    let outbound: Exchange;
    try {
      outbound = agent.session.request(head, inbound.peerEnded);
    } catch (err) {
      inbound.reset(err instanceof CtbridgeError ? err : new CtbridgeError('CTB_AGENT_DISCONNECTED', String(err)));
      return;
    }
    splice(inbound, outbound);
    const started = performance.now();
    outbound.once('close', () => {
      if (!this.opts.log.isLevelEnabled('info')) return;
      this.opts.log.info({
        requestId: head.requestId, tunnel: head.tunnel, fromNode: from, agentId: agent.agentId, connectionId: agent.connectionId,
        status: outbound.response?.status ?? 0, bytesIn: inbound.bytesIn, bytesOut: outbound.bytesIn, durationMs: Math.round((performance.now() - started) * 10) / 10,
      }, 'forwarded request');
    });
  }
}
