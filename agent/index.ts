/**
 * The ctbridge agent: runs inside the intranet, keeps one outbound WebSocket
 * to the relay, and serves the relay's exchanges by sending each to the
 * target its own agent.yaml names for the tunnel.
 *
 *   relay ──exchange──▶ relay-connection.ts ──▶ tunnel-requests.ts ──▶ target
 *
 *   const agent = await startAgent(config, log);
 *   await agent.whenReady();   // the relay answered `ready`
 *   await agent.close();       // drain, finish in-flight (≤ timeouts.shutdownGrace), close
 */
import { EventEmitter } from 'node:events';
import type { AgentConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { redactUrl } from '../src/redact.js';
import { decodeTokenUnverified } from '../src/token.js';
import type { EgressServer } from './clienttracker/egress.js';
import { createRelayDial } from './forward-proxy.js';
import { RelayConnection, type ReadyInfo } from './relay-connection.js';
import type { RelayContext } from './relay-errors.js';
import { TunnelRequests } from './tunnel-requests.js';

export type { ReadyInfo } from './relay-connection.js';

export interface AgentEvents {
  /** The relay accepted the agent (after every (re)connection). */
  ready: [info: ReadyInfo];
  /** The connection to the relay ended (the agent reconnects unless closing). */
  disconnect: [code: number, reason: string];
}

export interface AgentHandle {
  /** Connected to the relay and accepted by it right now. */
  readonly connected: boolean;
  /** Resolves when connected (at once if already); rejects if the agent is closed first. */
  whenReady(): Promise<void>;
  on<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  once<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  off<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  /** Graceful stop: drain (the relay opens no more exchanges), in-flight ones finish (≤ timeouts.shutdownGrace), then close 1000. */
  close(): Promise<void>;
}

/** How long close() waits for the relay to answer the WebSocket close after the grace period. */
const CLOSE_HANDSHAKE_MS = 1000;
/** How long close() waits for the relay to confirm a drain. */
const DRAIN_CONFIRM_MS = 5000;

class Agent extends EventEmitter<AgentEvents> implements AgentHandle {
  private closing: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly connections: readonly RelayConnection[],
    private readonly requests: TunnelRequests,
    private readonly egress: EgressServer | undefined,
  ) {
    super();
    for (const connection of connections) {
      connection.on('ready', (info) => this.emit('ready', info));
      connection.on('disconnect', (code, reason) => this.emit('disconnect', code, reason));
    }
  }

  /** Connected to at least one relay. */
  get connected(): boolean {
    return this.connections.some((c) => c.connected);
  }

  whenReady(): Promise<void> {
    const closed = this.stopping.signal;
    if (closed.aborted) return Promise.reject(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is closed'));
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = () => {
        closed.removeEventListener('abort', onClosing);
        resolve();
      };
      const onClosing = () => {
        this.off('ready', onReady);
        reject(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent was closed before it connected to the relay'));
      };
      this.once('ready', onReady);
      closed.addEventListener('abort', onClosing, { once: true });
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { connections, requests, egress, log } = this;
    const grace = this.config.timeouts.shutdownGrace;
    const deadline = Date.now() + grace;
    this.stopping.abort();
    log.info({ inFlight: requests.inFlight, graceMs: grace }, 'agent shutting down');
    egress?.beginShutdown();
    for (const connection of connections) connection.stopReconnecting();
    // Every exchange the relay opened before it confirmed the drain is served.
    await Promise.all(connections.map((c) => c.drain('agent shutting down', Math.min(DRAIN_CONFIRM_MS, grace))));
    requests.stopAccepting();
    const left = Math.max(deadline - Date.now(), 0);
    const [drained, egressDrained] = await Promise.all([requests.waitIdle(left), egress ? egress.waitIdle(left) : true]);
    if (!drained) log.warn({ inFlight: requests.inFlight, graceMs: grace }, 'shutdown grace period over; cutting requests still in flight');
    if (!egressDrained) log.warn({ inFlight: egress?.inFlight, graceMs: grace }, 'shutdown grace period over; cutting Client Tracker messages still in flight');
    await Promise.all(connections.map((c) => c.close('agent shutting down', CLOSE_HANDSHAKE_MS)));
    await requests.destroy();
    await egress?.close();
    log.info({}, 'agent stopped');
  }
}

/** Logs what the token carries (unverified: only the relay can check it). */
function inspectToken(config: AgentConfig, log: Logger): { agentId: string | undefined; tunnels: string[] } {
  const configured = Object.keys(config.tunnels);
  try {
    const claims = decodeTokenUnverified(config.token);
    log.info({
      agentId: claims.agentId, tunnels: claims.tunnels, expiresAt: claims.expiresAt.toISOString(),
      tokenId: claims.tokenId, keyId: claims.keyId, tokenSource: config.tokenSource,
    }, 'agent token');
    if (claims.expiresAt.getTime() <= Date.now()) {
      log.error({ expiresAt: claims.expiresAt.toISOString(), code: 'CTB_TOKEN_INVALID', hint: 'issue a new token with `ctbridge token ...` on the relay and set CTBRIDGE_AGENT_TOKEN' }, 'agent token has expired');
    } else if (claims.expiresSoon) {
      log.warn({ expiresAt: claims.expiresAt.toISOString(), hint: 'issue a new token with `ctbridge token ...` on the relay before then and set CTBRIDGE_AGENT_TOKEN' }, 'agent token expires soon');
    }
    const missing = configured.filter((t) => !claims.tunnels.includes(t));
    if (missing.length > 0) {
      log.warn({ tunnels: missing, tokenTunnels: claims.tunnels, hint: 'the relay will refuse them: add them to the token or remove them from agent.yaml' }, 'tunnels in agent.yaml are not in the token');
    }
    return { agentId: claims.agentId, tunnels: [...new Set([...claims.tunnels, ...configured])] };
  } catch (err) {
    log.error({ err }, 'agent token cannot be read');
    return { agentId: undefined, tunnels: configured };
  }
}

/**
 * Starts the agent: returns once the first connection attempt has begun
 * (not when the relay answers: use whenReady() or the 'ready' event).
 * Throws CtbridgeError (CTB_CONFIG_INVALID) for an unusable proxy setting or
 * an egress.listen address that cannot be bound.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<AgentHandle> {
  const token = inspectToken(config, log);
  const requests = new TunnelRequests(config, log);
  // One connection per relay instance (several behind a load balancer each need the agent).
  const connections = config.relays.map((relay) => {
    const one: AgentConfig = { ...config, relay };
    const dial = createRelayDial(one);
    const ctx: RelayContext = { relayUrl: relay, dial, connectTimeout: config.timeouts.connect, agentId: token.agentId, tunnels: token.tunnels };
    // `relayUrl`, not `relay`: RelayConnection's own lines have a `relay` field, and a line must not repeat a key.
    const connLog = config.relays.length > 1 ? log.child({ relayUrl: redactUrl(relay) }) : log;
    return new RelayConnection(one, connLog, dial, ctx, (exchange) => requests.serve(exchange));
  });
  // Provider → CT messages go out through any relay that is connected, the first listed first.
  const readySession = () => connections.map((c) => c.readySession).find((s) => s !== undefined);
  // Loaded only when configured: its schema validator (libxml2-wasm) costs ~180 MB RSS.
  const egress = config.egress ? await (await import('./clienttracker/egress.js')).startEgress(config, log, readySession) : undefined;
  const agent = new Agent(config, log, connections, requests, egress);
  for (const connection of connections) connection.start();
  return agent;
}
