/**
 * The WebSocket endpoint agents dial. A connection is authenticated from its
 * `Authorization: Bearer <JWT>` header, then the agent says hello with the
 * tunnels it serves; only after the relay answers ready does any request go
 * down it. Every refusal closes the WebSocket with a code and a reason the
 * agent logs for its admin, and the relay logs it too.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RelayConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { MuxSession } from '../src/mux/session.js';
import type { TunnelStream } from '../src/mux/stream.js';
import { CloseCode, PROTOCOL_VERSION, type HelloMessage, type ReadyMessage } from '../src/protocol.js';
import type { TokenVerifier } from '../src/token.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';
import { normalizeIp } from './forwarded.js';

export interface AgentEndpointOptions {
  config: RelayConfig;
  registry: AgentRegistry;
  verifier: TokenVerifier;
  log: Logger;
  publicUrlFor: (tunnel: string) => string;
  /** Streams an agent opens (egress); absent: such streams are refused. */
  onAgentStream?: (stream: TunnelStream, agent: ConnectedAgent) => void;
}

export class AgentEndpoint {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  private readonly sessions = new Set<MuxSession>();

  constructor(private readonly opts: AgentEndpointOptions) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.onConnection(ws, req);
    });
  }

  /** Tells every agent the relay is leaving, then closes their connections. */
  closeAll(code: number, reason: string): void {
    for (const s of this.sessions) s.close(code, reason);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const { config, verifier, log } = this.opts;
    const remote = normalizeIp(req.socket.remoteAddress ?? '');
    const connectionId = randomBytes(6).toString('hex');
    const clog = log.child({ connectionId, remote });
    const session = new MuxSession(ws, {
      role: 'relay',
      window: config.streamWindow,
      maxIncomingStreams: config.limits.maxStreamsPerAgent,
      heartbeat: config.heartbeat,
    });
    this.sessions.add(session);
    session.on('close', (code, reason) => {
      this.sessions.delete(session);
      if (agent) {
        this.opts.registry.remove(agent);
        clog.info({ agentId: agent.agentId, tunnels: agent.tunnels, code, reason }, 'agent disconnected');
      }
    });
    let agent: ConnectedAgent | undefined;
    const handshakeTimer = setTimeout(() => {
      clog.warn({ timeoutMs: config.timeouts.handshake }, 'agent refused: no hello within the handshake timeout');
      session.close(CloseCode.HANDSHAKE_TIMEOUT, 'no hello within the handshake timeout');
    }, config.timeouts.handshake);
    session.once('close', () => clearTimeout(handshakeTimer));

    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    // Listen before verifying: the agent sends hello right after the upgrade,
    // and it must not be lost while the token check runs.
    const verified = verifier.verify(token).then(
      (claims) => claims,
      (err: CtbridgeError & { reason?: string }) => {
        clog.warn({ code: err.code, reason: err.reason, err }, 'agent refused: bad token');
        session.close(CloseCode.TOKEN_INVALID, err.message);
        return undefined;
      },
    );
    session.on('control', (msg) => {
      void verified.then((claims) => {
        if (!claims || !session.isOpen) return;
        if (msg.type === 'hello' && !agent) {
          clearTimeout(handshakeTimer);
          agent = this.onHello(session, msg as unknown as HelloMessage, claims.agentId, claims.tunnels, connectionId, remote, clog);
        } else if (msg.type === 'goaway' && agent) {
          agent.draining = true;
          clog.info({ agentId: agent.agentId, reason: msg.reason }, 'agent leaving: new requests go to other agents first');
        }
      });
    });
    session.on('stream', (stream) => {
      if (agent && this.opts.onAgentStream) this.opts.onAgentStream(stream, agent);
      else stream.refuse(new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', 'this relay takes no Client Tracker messages (no tunnel of kind clienttracker), or the agent has not finished its handshake'));
    });
  }

  private onHello(
    session: MuxSession,
    hello: HelloMessage,
    agentId: string,
    allowed: readonly string[],
    connectionId: string,
    remote: string,
    clog: Logger,
  ): ConnectedAgent | undefined {
    if (hello.version !== PROTOCOL_VERSION) {
      const reason = `agent speaks tunnel protocol ${hello.version}, this relay speaks ${PROTOCOL_VERSION}; upgrade the older side`;
      clog.warn({ agentId, software: hello.software }, `agent refused: ${reason}`);
      session.close(CloseCode.VERSION_MISMATCH, reason);
      return undefined;
    }
    const tunnels = Array.isArray(hello.tunnels) ? hello.tunnels.filter((t) => typeof t === 'string') : [];
    const extra = tunnels.filter((t) => !allowed.includes(t));
    if (tunnels.length === 0 || extra.length > 0) {
      const reason =
        tunnels.length === 0
          ? 'agent offered no tunnels'
          : `tunnel ${extra.map((t) => `'${t}'`).join(', ')} not in token for agent '${agentId}' (token allows: ${allowed.join(', ')})`;
      clog.warn({ agentId, offered: tunnels, allowed }, `agent refused: ${reason}`);
      session.close(CloseCode.TUNNEL_NOT_ALLOWED, reason);
      return undefined;
    }
    const agent: ConnectedAgent = { connectionId, agentId, remoteAddress: remote, tunnels, session, draining: false, idleStreams: 0 };
    this.opts.registry.add(agent);
    const publicUrls = Object.fromEntries(tunnels.map((t) => [t, this.opts.publicUrlFor(t)]));
    session.setPeerWindow(hello.window);
    const ready: ReadyMessage = { type: 'ready', version: PROTOCOL_VERSION, connectionId, publicUrls, window: this.opts.config.streamWindow };
    session.sendControl({ ...ready });
    clog.info({ agentId, tunnels, software: hello.software, hostname: hello.hostname }, 'agent connected');
    return agent;
  }
}
