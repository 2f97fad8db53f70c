/**
 * The node-to-node listener (`cluster.listen`, never the public port):
 * other relay nodes dial it with a token signed by the cluster secret. To
 * each, this node announces its id, the tunnels its connected agents serve
 * and, on SIGTERM, that it is leaving; and it serves the exchanges they
 * forward by opening the same exchange to one of its own agents and
 * joining the two (src/mux/splice.ts). The forwarding node has already
 * applied the tunnel's policy and set the forwarded headers; they are
 * trusted here because the connection is authenticated.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ClusterConfig } from '../../src/config/index.js';
import { CtbridgeError } from '../../src/errors.js';
import { peerAddress } from '../../src/http/client-address.js';
import { listenOrExplain } from '../../src/listen.js';
import type { Logger } from '../../src/log.js';
import { untrusted } from '../../src/log-text.js';
import type { Exchange } from '../../src/mux/exchange.js';
import { MuxSession } from '../../src/mux/session.js';
import { splice } from '../../src/mux/splice.js';
import { CloseCode } from '../../src/protocol.js';
import type { AgentRegistry } from '../agent-registry.js';
import { verifyNodeToken } from './node-auth.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from './peer-protocol.js';

export interface PeerEndpointOptions {
  cluster: ClusterConfig;
  file: string;
  registry: AgentRegistry;
  log: Logger;
  window: () => number;
  heartbeat: () => { interval: number; timeout: number };
  maxIncoming: () => number;
  /** Counts an exchange another node forwarded here. */
  onForwarded?: () => void;
}

export class PeerEndpoint {
  private readonly server = http.createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('ctbridge cluster listener: nodes only\n');
  });
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    handleProtocols: (offered) => (offered.has(PEER_SUBPROTOCOL) ? PEER_SUBPROTOCOL : false),
  });
  private readonly sessions = new Set<MuxSession>();
  private draining = false;
  private announceScheduled = false;

  constructor(private readonly opts: PeerEndpointOptions) {
    this.server.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket, head));
    opts.registry.on('change', () => this.scheduleAnnounce());
  }

  async listen(): Promise<{ host: string; port: number }> {
    const bound = await listenOrExplain(this.server, this.opts.cluster.listen, { file: this.opts.file, key: 'cluster.listen' });
    return { host: bound.address, port: bound.port };
  }

  /** Tells every node this one is leaving: they stop forwarding to it. */
  drain(): void {
    this.draining = true;
    for (const s of this.sessions) s.sendControl({ type: 'draining' });
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.close(CloseCode.GOING_AWAY, 'node leaving');
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
      for (const s of this.sessions) s.sendControl({ type: 'tunnels', tunnels });
    });
  }

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const auth = req.headers.authorization;
    const nodeId = req.url === PEER_PATH ? await verifyNodeToken(auth?.startsWith('Bearer ') ? auth.slice(7) : undefined, this.opts.cluster.secret) : undefined;
    if (!nodeId) {
      this.opts.log.warn({ remote: peerAddress(req.socket), path: untrusted(req.url) }, 'cluster listener refused a connection: not a node of this cluster (check cluster.secret)');
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, nodeId));
  }

  private onConnection(ws: WebSocket, nodeId: string): void {
    const { log } = this.opts;
    const session = new MuxSession(ws, { role: 'agent', window: this.opts.window(), maxIncoming: this.opts.maxIncoming(), heartbeat: this.opts.heartbeat() });
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    session.on('problem', (problem) => log.warn({ nodeId, problem: untrusted(problem) }, 'peer node broke the tunnel protocol'));
    session.sendControl({ type: 'node', nodeId: this.opts.cluster.nodeId, tunnels: this.localTunnels(), draining: this.draining });
    session.on('exchange', (ex) => this.serve(ex, nodeId));
  }

  /** An exchange another node forwards: onward to one of this node's agents. */
  private serve(inbound: Exchange, from: string): void {
    const { head } = inbound;
    this.opts.onForwarded?.();
    const picked = this.opts.registry.pick(head.tunnel);
    if (!('agent' in picked)) {
      inbound.reset(new CtbridgeError('CTB_AGENT_NOT_CONNECTED', `no agent for tunnel '${head.tunnel}' is connected to relay node ${this.opts.cluster.nodeId} any more`));
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
