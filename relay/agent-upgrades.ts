/**
 * Which agent upgrades the relay takes, and when, before any token is
 * checked: the handshake gate (relay/handshake-gate.ts) bounds how many
 * connections are between the upgrade and `ready` at once and turns the
 * surplus away with 503 CTB_RELAY_BUSY (logged once a second), and a node
 * that is leaving refuses new agents (CTB_SHUTTING_DOWN). A connection let
 * through is upgraded to a WebSocket and handed to the endpoint
 * (relay/agent-endpoint.ts) with `done`, which frees its turn.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CtbridgeError } from '../src/errors.js';
import { peerAddress } from '../src/http/client-address.js';
import type { Logger } from '../src/log.js';
import { SUBPROTOCOL } from '../src/protocol.js';
import { HandshakeGate, type HandshakeGateOptions } from './handshake-gate.js';
import { refuseHandshake } from './handshake-refusal.js';

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

/** The upgraded connection and `done`, to call once its handshake is over (ready, refused or closed). */
export type OnAgentConnection = (ws: WebSocket, req: IncomingMessage, done: () => void) => void;

export class AgentUpgrades {
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 16 * 1024 * 1024,
    // Accept the agent's protocol, or any ctbridge version it offers, so an
    // agent of another version hears why it is refused (4426) rather than
    // failing its handshake without a reason.
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : ([...offered].find((p) => p.startsWith('ctbridge.')) ?? false)),
  });
  private leaving = false;
  /** Connections between the upgrade and ready, and those waiting for a turn. */
  private readonly gate: HandshakeGate;
  private turnedAway = 0;
  private turnedAwayIds: string[] = [];
  private turnedAwayLog: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly onConnection: OnAgentConnection,
    gate: Partial<HandshakeGateOptions> | undefined,
  ) {
    this.gate = new HandshakeGate({ limit: MAX_HANDSHAKES, maxWaiting: MAX_WAITING_HANDSHAKES, maxWaitMs: MAX_HANDSHAKE_WAIT_MS, ...gate });
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
    this.log.info({ requestId, remote: peerAddress(req.socket), code: 'CTB_SHUTTING_DOWN' }, 'agent refused: this relay node is shutting down; it connects again elsewhere');
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
      this.log.warn(
        { turnedAway: this.turnedAway, firstRequestId: this.turnedAwayIds[0], lastRequestId: this.turnedAwayIds[1], limit: this.gate.limit, waiting: this.gate.queued, admittedPerSecond: Math.round(this.gate.ratePerSecond()) },
        'agents turned away: too many connecting at once (CTB_RELAY_BUSY); they retry after the Retry-After asked',
      );
      this.turnedAway = 0;
      this.turnedAwayIds = [];
    }, 1000);
    this.turnedAwayLog.unref();
  }

  /** SIGTERM: new agents are refused, and those waiting their turn are answered at once: they connect again and land on another node. */
  leave(): void {
    this.leaving = true;
    this.gate.startAll();
  }
}
