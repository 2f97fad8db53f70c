/**
 * The WebSocket endpoint agents dial. A connection is authenticated from its
 * `Authorization: Bearer <JWT>` header and must speak this relay's tunnel
 * protocol (WebSocket subprotocol `ctbridge.2`); then the agent says hello
 * with the tunnels it serves, and only after the relay answers ready does
 * any exchange go down it. Every refusal closes the WebSocket with a code
 * and a reason the agent logs for its admin, and the relay logs it too:
 * before the token is verified that reason is only the public sentence and
 * a request id (relay/handshake-refusal.ts), the why is in the relay's log
 * line with that id.
 *
 * Everything an agent sends is untrusted: control messages are checked
 * field by field, strings are capped before they reach a log line, and a
 * malformed message closes that one connection with a reason.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RelayConfig } from '../src/config/index.js';
import { CtbridgeError, isCtbridgeError } from '../src/errors.js';
import { peerAddress } from '../src/http/client-address.js';
import type { Logger } from '../src/log.js';
import { untrusted } from '../src/log-text.js';
import type { Exchange } from '../src/mux/exchange.js';
import { MuxSession } from '../src/mux/session.js';
import { nextRequestId } from '../src/request-id.js';
import { CloseCode, PROTOCOL_VERSION, SUBPROTOCOL, isTunnelName, type HelloMessage, type ReadyMessage } from '../src/protocol.js';
import { type TokenVerifier, type VerifiedAgentClaims } from '../src/token.js';
import { expiryCheckDelayMs } from '../src/agent-auth.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';
import { HandshakeGate, type HandshakeGateOptions } from './handshake-gate.js';
import { publicCloseReason, refuseHandshake, verifiedTokenCloseReason } from './handshake-refusal.js';

export interface AgentEndpointOptions {
  /** The config and token verifier as they are now (reloads swap them). */
  live: { readonly config: RelayConfig; readonly verifier: TokenVerifier };
  registry: AgentRegistry;
  log: Logger;
  publicUrlFor: (tunnel: string) => string;
  /** Exchanges an agent opens (egress); absent: they are refused. */
  onAgentExchange?: (exchange: Exchange, agent: ConnectedAgent) => void;
  /** In a cluster: this node's id and the nodes agents may connect to (told in ready and on change). */
  nodes?: () => { node: string; nodes: string[] };
  /** The handshake gate's bounds (tests); default MAX_HANDSHAKES, MAX_WAITING_HANDSHAKES, MAX_HANDSHAKE_WAIT_MS. */
  gate?: Partial<HandshakeGateOptions>;
}

const MAX_HELLO_TUNNELS = 1000;
/**
 * Agent connections between the upgrade and `ready` at once
 * (relay/handshake-gate.ts). After a relay restart every agent reconnects
 * within seconds; the admitted ones finish in well under their timeouts
 * instead of all of them queueing until they time out (and retrying: a
 * collapse).
 */
export const MAX_HANDSHAKES = 1024;
/** The public listener's accept queue in the kernel (Linux caps it at net.core.somaxconn, 4096 by default since 5.4). */
export const PUBLIC_LISTEN_BACKLOG = 4096;
/** Agent connections waiting for a turn; past this many the next is answered 503 CTB_RELAY_BUSY before any token check. */
export const MAX_WAITING_HANDSHAKES = 10_000;
/** A waiting connection older than this is turned away when its turn comes (the agent gives up after `timeouts.connect`, 10 s by default). */
export const MAX_HANDSHAKE_WAIT_MS = 5000;

/** The hello's fields if they have the right types, else which one is wrong. */
function checkHello(msg: Record<string, unknown>): { hello: HelloMessage } | { problem: string } {
  const { version, tunnels, software, hostname, window } = msg;
  if (typeof version !== 'number') return { problem: 'hello.version is not a number' };
  if (!Array.isArray(tunnels) || tunnels.length > MAX_HELLO_TUNNELS || !tunnels.every((t) => typeof t === 'string' && isTunnelName(t))) {
    return { problem: 'hello.tunnels is not a list of tunnel names' };
  }
  if (typeof software !== 'string' || typeof hostname !== 'string') return { problem: 'hello.software or hello.hostname is not a string' };
  if (typeof window !== 'number') return { problem: 'hello.window is not a number' };
  return { hello: { type: 'hello', version, tunnels: [...new Set(tunnels as string[])], software, hostname, window } };
}

export class AgentEndpoint {
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    // Accept the agent's protocol, or any ctbridge version it offers, so an
    // agent of another version hears why it is refused (4426) rather than
    // failing its handshake without a reason.
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : ([...offered].find((p) => p.startsWith('ctbridge.')) ?? false)),
  });
  private readonly sessions = new Set<MuxSession>();
  private readonly expiryTimers = new Map<ConnectedAgent, NodeJS.Timeout>();
  private leaving = false;
  /** Connections between the upgrade and ready, and those waiting for a turn. */
  private readonly gate: HandshakeGate;
  private turnedAway = 0;
  private turnedAwayIds: string[] = [];
  private turnedAwayLog: NodeJS.Timeout | null = null;

  constructor(private readonly opts: AgentEndpointOptions) {
    this.gate = new HandshakeGate({ limit: MAX_HANDSHAKES, maxWaiting: MAX_WAITING_HANDSHAKES, maxWaitMs: MAX_HANDSHAKE_WAIT_MS, ...opts.gate });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.leaving) {
      // A node that is shutting down takes no new agents: they connect again and land on another node.
      this.refuseLeaving(req, socket);
      return;
    }
    this.gate.enter(socket, () => this.upgrade(req, socket, head), () => this.turnAway(socket));
  }

  /** The gate let this connection through: the WebSocket upgrade, then the token check and hello. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      this.gate.done();
    };
    socket.once('close', done);
    if (socket.destroyed) {
      done();
      return;
    }
    if (this.leaving) {
      // It waited its turn while the node began shutting down.
      this.refuseLeaving(req, socket);
      done();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.onConnection(ws, req, done);
    });
  }

  private refuseLeaving(req: IncomingMessage, socket: Duplex): void {
    const requestId = refuseHandshake(socket, new CtbridgeError('CTB_SHUTTING_DOWN', 'this relay node is shutting down; connect again'));
    this.opts.log.info({ requestId, remote: peerAddress(req.socket), code: 'CTB_SHUTTING_DOWN' }, 'agent refused: this relay node is shutting down; it connects again elsewhere');
  }

  /** 503 CTB_RELAY_BUSY with a Retry-After that spreads the turned-away agents over the time the relay needs. */
  private turnAway(socket: Duplex): void {
    this.turnedAway++;
    const requestId = refuseHandshake(socket, new CtbridgeError('CTB_RELAY_BUSY', 'this relay node is admitting many agents at once; connect again shortly'), this.gate.retryAfterSeconds());
    // The agent shows its request id: the once-a-second line names the first and last it covers.
    this.turnedAwayIds[0] ??= requestId;
    this.turnedAwayIds[1] = requestId;
    this.logTurnedAway();
  }

  /** One log line per second at most while agents are turned away (a storm is thousands). */
  private logTurnedAway(): void {
    if (this.turnedAwayLog) return;
    this.turnedAwayLog = setTimeout(() => {
      this.turnedAwayLog = null;
      this.opts.log.warn(
        { turnedAway: this.turnedAway, firstRequestId: this.turnedAwayIds[0], lastRequestId: this.turnedAwayIds[1], limit: this.gate.limit, waiting: this.gate.queued, admittedPerSecond: Math.round(this.gate.ratePerSecond()) },
        'agents turned away: too many connecting at once (CTB_RELAY_BUSY); they retry after the Retry-After asked',
      );
      this.turnedAway = 0;
      this.turnedAwayIds = [];
    }, 1000);
    this.turnedAwayLog.unref();
  }

  /** Tells every agent the relay is leaving, then closes their connections. */
  closeAll(code: number, reason: string): void {
    for (const s of this.sessions) s.close(code, reason);
  }

  /**
   * SIGTERM: new agents are turned away, and connected ones are told to
   * connect again elsewhere (goaway); their exchanges here finish.
   */
  goawayAll(reason: string): void {
    this.leaving = true;
    // Agents waiting their turn are answered at once: they connect again and land on another node.
    this.gate.startAll();
    for (const s of this.sessions) s.sendControl({ type: 'goaway', reason });
  }

  /** Tells every agent which nodes the cluster has now. */
  announceNodes(): void {
    const nodes = this.opts.nodes?.();
    if (!nodes) return;
    for (const a of this.opts.registry.all()) a.session.sendControl({ type: 'cluster', ...nodes });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Checks every connected agent's token against the config as it is now
   * (after a reload: keys, revocations, audience, issuer) and closes the
   * connections it no longer allows, with the reason. Returns how many.
   */
  recheckAll(): number {
    let closed = 0;
    for (const agent of this.opts.registry.all()) if (this.recheck(agent)) closed++;
    return closed;
  }

  /** Closes `agent`'s connection if its token no longer holds; true if it did. */
  private recheck(agent: ConnectedAgent): boolean {
    if (!agent.claims || !agent.session.isOpen) return false;
    const err = this.opts.live.verifier.recheck(agent.claims);
    if (!err) return false;
    const requestId = nextRequestId();
    this.opts.log.warn({ requestId, connectionId: agent.connectionId, agentId: agent.agentId, tokenId: agent.claims.tokenId, reason: err.reason, detail: err.message }, 'agent cut off: its token no longer holds');
    // The agent proved this token at connect: it hears what its operator can do, not relay.yaml's keys.
    agent.session.close(CloseCode.TOKEN_INVALID, verifiedTokenCloseReason(err, requestId));
    return true;
  }

  /** Closes the connection when the token expires (a timer can wait ~24.8 days at most: re-armed until then). */
  private watchExpiry(agent: ConnectedAgent): void {
    if (!agent.claims) return;
    const arm = (): void => {
      const timer = setTimeout(() => {
        this.expiryTimers.delete(agent);
        if (!this.recheck(agent) && agent.session.isOpen) arm();
      }, expiryCheckDelayMs(agent.claims!));
      timer.unref();
      this.expiryTimers.set(agent, timer);
    };
    arm();
  }
  private onConnection(ws: WebSocket, req: IncomingMessage, handshakeDone: () => void): void {
    const { live, log } = this.opts;
    const { config, verifier } = live;
    const remote = peerAddress(req.socket);
    const connectionId = randomBytes(6).toString('hex');
    const clog = log.child({ connectionId, remote });
    const session = new MuxSession(ws, {
      role: 'relay',
      window: config.streamWindow,
      maxIncoming: config.limits.maxStreamsPerAgent,
      heartbeat: config.heartbeat,
    });
    this.sessions.add(session);
    let agent: ConnectedAgent | undefined;
    session.on('close', (code, reason) => {
      handshakeDone();
      this.sessions.delete(session);
      if (agent) {
        clearTimeout(this.expiryTimers.get(agent));
        this.expiryTimers.delete(agent);
        this.opts.registry.remove(agent);
        clog.info({ agentId: agent.agentId, tunnels: agent.tunnels, closeCode: code, reason: untrusted(reason) }, 'agent disconnected');
      }
    });
    session.on('problem', (problem) => clog.warn({ agentId: agent?.agentId, problem: untrusted(problem) }, 'agent broke the tunnel protocol'));

    if (ws.protocol !== SUBPROTOCOL) {
      const theirs = ws.protocol ? `${untrusted(ws.protocol)}` : 'ctbridge.1 (no subprotocol)';
      const reason = `agent speaks tunnel protocol ${theirs}, this relay speaks ${SUBPROTOCOL}; run the same ctbridge version on both`;
      clog.warn({ offered: theirs }, `agent refused: ${reason}`);
      session.close(CloseCode.VERSION_MISMATCH, reason);
      return;
    }

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
      (caught: unknown) => {
        const err: CtbridgeError & { reason?: string } = isCtbridgeError(caught) ? caught : new CtbridgeError('CTB_TOKEN_INVALID', String(caught));
        // The caller proved nothing: it hears the code, the public sentence and this id; the why is logged with the id.
        const requestId = nextRequestId();
        clog.warn({ requestId, code: err.code, reason: err.reason, err }, 'agent refused: bad token');
        session.close(CloseCode.TOKEN_INVALID, publicCloseReason(err, requestId));
        return undefined;
      },
    );
    session.on('control', (msg) => {
      void verified.then((claims) => {
        if (!claims || !session.isOpen) return;
        if (msg.type === 'hello' && !agent) {
          clearTimeout(handshakeTimer);
          agent = this.onHello(session, msg, claims, connectionId, remote, clog);
          handshakeDone();
          if (agent) this.watchExpiry(agent);
        } else if (msg.type === 'drain' && agent) {
          this.opts.registry.markDraining(agent);
          // No exchange is opened to this agent after this frame; the agent may close once its own are done.
          session.sendControl({ type: 'drained' });
          clog.info({ agentId: agent.agentId, reason: untrusted(msg.reason), open: session.outgoingCount }, 'agent leaving: no new exchanges go to it');
        } else {
          clog.debug({ agentId: agent?.agentId, type: untrusted(msg.type) }, 'ignored a control message');
        }
      });
    });
    session.on('exchange', (exchange) => {
      if (agent && exchange.head.kind === 'egress' && this.opts.onAgentExchange) this.opts.onAgentExchange(exchange, agent);
      else this.refuseEgress(exchange, agent);
    });
  }

  /** Turns down an exchange an agent opened that this relay does not take. */
  refuseEgress(exchange: Exchange, agent: ConnectedAgent | undefined): void {
    const { kind, tunnel } = exchange.head;
    this.opts.log.warn({ agentId: agent?.agentId, connectionId: agent?.connectionId, kind, tunnel }, 'agent exchange refused');
    // Before its hello is answered the agent has proved nothing: it learns nothing of this relay's tunnels.
    exchange.reset(new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED',
      !agent
        ? 'the agent has not finished its handshake'
        : kind !== 'egress'
          ? `the relay takes only egress exchanges from agents, not ${kind}`
          : 'this relay takes no Client Tracker messages (no tunnel of kind clienttracker)'));
  }

  private onHello(
    session: MuxSession,
    msg: Record<string, unknown>,
    claims: VerifiedAgentClaims,
    connectionId: string,
    remote: string,
    clog: Logger,
  ): ConnectedAgent | undefined {
    const { agentId, tunnels: allowed } = claims;
    const checked = checkHello(msg);
    if ('problem' in checked) {
      clog.warn({ agentId, problem: checked.problem }, 'agent refused: malformed hello');
      session.close(CloseCode.BAD_HELLO, `malformed hello: ${checked.problem}`);
      return undefined;
    }
    const { hello } = checked;
    if (hello.version !== PROTOCOL_VERSION) {
      const reason = `agent speaks tunnel protocol ${hello.version}, this relay speaks ${PROTOCOL_VERSION}; run the same ctbridge version on both`;
      clog.warn({ agentId, software: untrusted(hello.software) }, `agent refused: ${reason}`);
      session.close(CloseCode.VERSION_MISMATCH, reason);
      return undefined;
    }
    const tunnels = hello.tunnels;
    if (tunnels.length === 0) {
      // `agent verify --connect` checks its token this way: accepted, nothing registered, no traffic taken from a running agent.
      clog.info({ agentId, software: untrusted(hello.software), agentHostname: untrusted(hello.hostname) }, 'agent token checked: the hello offered no tunnels (agent verify --connect)');
      session.close(CloseCode.NO_TUNNELS_OFFERED, 'token accepted; agent offered no tunnels');
      return undefined;
    }
    const extra = tunnels.filter((t) => !allowed.includes(t));
    if (extra.length > 0) {
      const reason = `tunnel ${extra.map((t) => `'${t}'`).join(', ')} not in token for agent '${agentId}' (token allows: ${allowed.join(', ')})`;
      clog.warn({ agentId, offered: tunnels, allowed }, `agent refused: ${reason}`);
      session.close(CloseCode.TUNNEL_NOT_ALLOWED, reason);
      return undefined;
    }
    const agent: ConnectedAgent = {
      connectionId, agentId, remoteAddress: remote, tunnels, session, draining: false,
      claims, since: new Date(), software: untrusted(hello.software, 100), hostname: untrusted(hello.hostname, 100),
    };
    this.opts.registry.add(agent);
    // requireDeclaredTunnels: the connection stays (its declared tunnels serve); the others get no public URL and no request.
    const config = this.opts.live.config;
    const undeclared = config.requireDeclaredTunnels ? tunnels.filter((t) => !Object.hasOwn(config.tunnels, t)) : [];
    if (undeclared.length) {
      clog.warn({ agentId, tunnels: undeclared }, "agent's tunnels not served: relay.yaml does not declare them and requireDeclaredTunnels is on; add them to tunnels: and reload to serve them");
    }
    const publicUrls = Object.fromEntries(tunnels.filter((t) => !undeclared.includes(t)).map((t) => [t, this.opts.publicUrlFor(t)]));
    session.setPeerWindow(hello.window);
    const ready: ReadyMessage = { type: 'ready', version: PROTOCOL_VERSION, connectionId, publicUrls, window: this.opts.live.config.streamWindow, ...this.opts.nodes?.() };
    session.sendControl(ready);
    clog.info({
      agentId, tunnels, software: untrusted(hello.software), agentHostname: untrusted(hello.hostname),
      tokenId: claims.tokenId, keyId: claims.keyId, tokenExpiresAt: claims.expiresAt.toISOString(),
    }, 'agent connected');
    return agent;
  }
}
