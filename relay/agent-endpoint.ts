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
 *
 * By file: relay/agent-upgrades.ts decides which upgrades get through and
 * when (the handshake gate, a node that is leaving); this file runs each
 * upgraded connection (the token check, the handshake timeout, control
 * messages, exchanges the agent opens, its token re-checked after a reload
 * and at expiry); relay/agent-hello.ts checks the hello and registers the
 * agent.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { RelayConfig } from '../src/config/index.js';
import { CtbridgeError, isCtbridgeError } from '../src/errors.js';
import { peerAddress } from '../src/http/client-address.js';
import type { Logger } from '../src/log.js';
import { untrusted } from '../src/log-text.js';
import type { Exchange } from '../src/mux/exchange.js';
import { MuxSession } from '../src/mux/session.js';
import { nextRequestId } from '../src/request-id.js';
import { CloseCode, SUBPROTOCOL } from '../src/protocol.js';
import { type TokenVerifier } from '../src/token.js';
import { expiryCheckDelayMs } from '../src/agent-auth.js';
import { acceptHello } from './agent-hello.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';
import { AgentUpgrades } from './agent-upgrades.js';
import type { HandshakeGateOptions } from './handshake-gate.js';
import { publicCloseReason, verifiedTokenCloseReason } from './handshake-refusal.js';

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

export class AgentEndpoint {
  /** Which upgrades get through, and when (the handshake gate, a leaving node). */
  private readonly upgrades: AgentUpgrades;
  private readonly sessions = new Set<MuxSession>();
  private readonly expiryTimers = new Map<ConnectedAgent, NodeJS.Timeout>();

  constructor(private readonly opts: AgentEndpointOptions) {
    this.upgrades = new AgentUpgrades(opts.log, (ws, req, done) => this.onConnection(ws, req, done), opts.gate);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrades.handleUpgrade(req, socket, head);
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
    this.upgrades.leave();
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
          agent = acceptHello(this.opts, session, msg, claims, connectionId, remote, clog);
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
}
