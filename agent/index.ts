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
import { startAdminServer, type AdminHandle, type ReloadResult } from '../src/admin/server.js';
import { loadAgentConfig, type AgentConfig } from '../src/config/index.js';
import { CtbridgeError, isCtbridgeError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { configureRedaction } from '../src/redact.js';
import { decodeTokenUnverified } from '../src/token.js';
import { agentAdminRoutes } from './admin.js';
import { AgentInspect } from './inspect.js';
import { inspectRoutes, withInspector } from '../src/admin/exchanges-routes.js';
import type { EgressServer } from './clienttracker/egress.js';
import { AgentMetrics } from './metrics.js';
import type { ReadyInfo } from './relay-messages.js';
import { RelayConnections } from './relay-connections.js';
import { TunnelRequests } from './tunnel-requests.js';

export type { ReadyInfo } from './relay-messages.js';

export interface AgentEvents {
  /** The relay accepted the agent (after every (re)connection). */
  ready: [info: ReadyInfo];
  /** The connection to the relay ended (the agent reconnects unless closing). */
  disconnect: [code: number, reason: string];
}

export interface AgentHandle {
  /** Connected to the relay and accepted by it right now. */
  readonly connected: boolean;
  /** Where the admin listener is bound, if on. */
  readonly adminAddress: { host: string; port: number } | undefined;
  /** Resolves when connected (at once if already); rejects if the agent is closed first. */
  whenReady(): Promise<void>;
  on<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  once<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  off<E extends keyof AgentEvents>(event: E, listener: (...args: AgentEvents[E]) => void): this;
  /** Reads agent.yaml (and the token) again and applies it without dropping a request; the running config stays if it is invalid. */
  reload(): Promise<ReloadResult>;
  /** Graceful stop: drain (the relay opens no more exchanges), in-flight ones finish (≤ timeouts.shutdownGrace), then close 1000. */
  close(): Promise<void>;
}

type EgressModule = typeof import('./clienttracker/egress.js');

class Agent extends EventEmitter<AgentEvents> implements AgentHandle {
  private closing: Promise<void> | null = null;
  private reloading: Promise<ReloadResult> | undefined;
  private readonly stopping = new AbortController();
  private readonly publicUrls: Record<string, string> = {};
  admin: AdminHandle | undefined;

  constructor(
    private config: AgentConfig,
    private readonly log: Logger,
    readonly connections: RelayConnections,
    readonly requests: TunnelRequests,
    private egress: EgressServer | undefined,
  ) {
    super();
    connections.on('ready', (info) => {
      Object.assign(this.publicUrls, info.publicUrls);
      this.emit('ready', info);
    });
    connections.on('disconnect', (code, reason) => this.emit('disconnect', code, reason));
  }

  get connected(): boolean {
    return this.connections.connected;
  }

  get adminAddress(): { host: string; port: number } | undefined {
    return this.admin?.address;
  }

  get currentConfig(): AgentConfig {
    return this.config;
  }

  /** Tunnels URLs the relays gave, for the status page. */
  get tunnelUrls(): Record<string, string> {
    return this.publicUrls;
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

  reload(): Promise<ReloadResult> {
    this.reloading ??= this.applyReload().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async applyReload(): Promise<ReloadResult> {
    const { log } = this;
    if (this.closing) return { ok: false, message: 'the agent is shutting down' };
    let next: AgentConfig;
    try {
      next = loadAgentConfig(this.config.file);
    } catch (err) {
      const message = isCtbridgeError(err) ? err.userMessage : String(err);
      log.error({ file: this.config.file, err: message }, 'reload refused: the config is invalid; the running config stays');
      return { ok: false, message };
    }
    const prev = this.config;
    inspectToken(next, log);
    const changedTunnels = this.requests.update(next);
    const links = this.connections.apply(next);
    if (JSON.stringify(prev.egress) !== JSON.stringify(next.egress) || prev.egress && Object.keys(prev.tunnels).join() !== Object.keys(next.tunnels).join()) {
      await this.egress?.close();
      this.egress = next.egress ? await startEgressFor(next, log, this.connections, this.requests.inspect) : undefined;
    }
    configureRedaction(next.log.redact);
    this.requests.inspect?.update(next.inspect);
    log.level = next.log.level;
    this.config = next;
    const needRestart = JSON.stringify(prev.admin.listen) !== JSON.stringify(next.admin.listen) ? ['admin.listen'] : [];
    log.info({ file: next.file, tunnels: Object.keys(next.tunnels), changedTunnels, relayConnections: links, needRestart: needRestart.length ? needRestart : undefined }, 'config reloaded');
    return {
      ok: true,
      message: `reloaded ${next.file}: ${changedTunnels.length} tunnel(s) changed, ${links.started} relay connection(s) renewed${needRestart.length ? `; restart to change ${needRestart.join(', ')}` : ''}`,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { connections, requests, log } = this;
    const egress = this.egress;
    const grace = this.config.timeouts.shutdownGrace;
    const deadline = Date.now() + grace;
    this.stopping.abort();
    log.info({ inFlight: requests.inFlight, graceMs: grace }, 'agent shutting down');
    egress?.beginShutdown();
    connections.stopReconnecting();
    // Every exchange the relay opened before it confirmed the drain is served.
    await connections.drainAll('agent shutting down', grace);
    requests.stopAccepting();
    const left = Math.max(deadline - Date.now(), 0);
    const [drained, egressDrained] = await Promise.all([requests.whenIdle(left), egress ? egress.whenIdle(left) : true]);
    if (!drained) log.warn({ inFlight: requests.inFlight, graceMs: grace }, 'shutdown grace period over; cutting requests still in flight');
    if (!egressDrained) log.warn({ inFlight: egress?.inFlight, graceMs: grace }, 'shutdown grace period over; cutting Client Tracker messages still in flight');
    await connections.closeAll('agent shutting down');
    await requests.destroy();
    await egress?.close();
    await this.admin?.close();
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

/** Loaded only when configured: the schema validator is libxml2-wasm. */
async function startEgressFor(config: AgentConfig, log: Logger, connections: RelayConnections, inspect: AgentInspect | undefined): Promise<EgressServer> {
  const mod: EgressModule = await import('./clienttracker/egress.js');
  // Provider → CT messages go out through any relay that is connected, the first listed first.
  return mod.startEgress(config, log, () => connections.readySession(), inspect ? { inspect: (r) => inspect.egress(r) } : {});
}

/**
 * Starts the agent: returns once the first connection attempts have begun
 * (not when the relay answers: use whenReady() or the 'ready' event), with
 * the admin listener up. Throws CtbridgeError (CTB_CONFIG_INVALID) for an
 * unusable proxy setting or a listen address that cannot be bound.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<AgentHandle> {
  const started = new Date();
  inspectToken(config, log);
  const requests = new TunnelRequests(config, log);
  // Recent exchanges for the admin listener (agent/inspect.ts).
  const inspect = new AgentInspect(config.inspect, () => agent.currentConfig.file);
  requests.inspect = inspect;
  const connections = new RelayConnections(log, (exchange) => requests.serve(exchange));
  const egress = config.egress ? await startEgressFor(config, log, connections, inspect) : undefined;
  const agent = new Agent(config, log, connections, requests, egress);
  const token = () => {
    try {
      const c = decodeTokenUnverified(agent.currentConfig.token);
      return { agentId: c.agentId, tokenId: c.tokenId, expiresAt: c.expiresAt };
    } catch {
      return { agentId: undefined, tokenId: undefined, expiresAt: undefined };
    }
  };
  const metrics = new AgentMetrics({
    relays: () => connections.status().map((r) => ({ relay: r.relay, connected: r.state === 'connected', openExchanges: r.openExchanges, reconnects: r.reconnects })),
    tokenSecondsLeft: () => {
      const at = token().expiresAt;
      return at ? Math.round((at.getTime() - Date.now()) / 1000) : undefined;
    },
  });
  requests.onFinished = (tunnel, status, seconds, code, bytes) => metrics.request(tunnel, status, seconds, code, bytes);
  const ready = () => {
    const relays = connections.status();
    const up = relays.filter((r) => r.state === 'connected').length;
    if (up === 0) return { ready: false, reason: relays[0]?.lastProblem?.message ?? 'not connected to a relay yet' };
    const tunnels = Object.keys(agent.currentConfig.tunnels).join(', ');
    return { ready: true, reason: `connected to ${up} of ${relays.length} relay(s), serving ${tunnels}` };
  };
  agent.admin = await startAdminServer(config.admin, config.file, log, withInspector(inspectRoutes({
    role: 'agent',
    ring: () => (inspect.enabled ? inspect.ring : undefined),
    file: () => agent.currentConfig.file,
    replay: (id) => inspect.replay(id, requests),
  }), agentAdminRoutes({
    started,
    config: () => agent.currentConfig,
    token,
    relays: () => connections.status(),
    publicUrls: () => agent.tunnelUrls,
    counts: () => requests.counts,
    recentFailures: () => requests.recentFailures,
    metrics,
    ready,
    reload: () => agent.reload(),
    recentExchanges: () => (inspect.enabled ? inspect.ring.list({}, 10) : undefined),
  })));
  connections.apply(config);
  return agent;
}
