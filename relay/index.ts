/**
 * The relay process: one public HTTP(S) listener that serves agents'
 * WebSocket connections on `agentPath` and everything else as tunnel
 * traffic, and an admin listener (health, readiness, metrics, status).
 *
 *   public request → public-requests.ts / public-upgrades.ts
 *                  → admission.ts (route, policy, the one agent)
 *                  → exchange over the agent's session (src/mux)
 *                  → agent → target, and back
 *
 * `reload()` (SIGHUP, or POST /reload on the admin listener) reads the
 * config file again; a file that fails validation is refused with a log
 * line and the running config stays (live-config.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { startAdminServer, type ReloadResult } from '../src/admin/server.js';
import { formatHostPort, loadRelayConfig, type RelayConfig } from '../src/config/index.js';
import { isCtbridgeError } from '../src/errors.js';
import { listenOrExplain } from '../src/listen.js';
import type { Logger } from '../src/log.js';
import { CloseCode } from '../src/protocol.js';
import { configureRedaction } from '../src/redact.js';
import { Admission } from './admission.js';
import { AgentEndpoint } from './agent-endpoint.js';
import { PUBLIC_LISTEN_BACKLOG } from './agent-upgrades.js';
import { AgentRegistry } from './agent-registry.js';
import { relayAdminRoutes } from './admin.js';
import { Cluster, clusterRestartOnly } from './cluster/index.js';
import { RelayInspect } from './inspect.js';
import { inspectRoutes, withInspector } from '../src/admin/exchanges-routes.js';
import type { EgressHandler } from './clienttracker/egress.js';
import { LiveConfig, hasClientTracker, loadClientTracker } from './live-config.js';
import { RelayMetrics } from './metrics.js';
import { PublicRequests } from './public-requests.js';
import { PublicUpgrades } from './public-upgrades.js';
import { describeChanges, undeclaredServed, weakenedPolicies } from './policy-changes.js';

export interface RelayHandle {
  /** Where the public listener is bound (useful with port 0). */
  readonly address: { host: string; port: number };
  /** Where the admin listener is bound, if on. */
  readonly adminAddress: { host: string; port: number } | undefined;
  readonly registry: AgentRegistry;
  /** Reads the config file again and applies it; the running config stays if the file is invalid. */
  reload(): Promise<ReloadResult>;
  /** Stop accepting, let in-flight requests finish up to the grace period, then close agents. */
  close(): Promise<void>;
}

export async function startRelay(config: RelayConfig, log: Logger): Promise<RelayHandle> {
  const started = new Date();
  const registry = new AgentRegistry(() => live.config.limits.maxStreamsPerAgent);
  let publicUrl = config.publicUrl;
  const publicUrlFor = (tunnel: string): string => `${publicUrl}/t/${tunnel}/`;
  const requestLog = log.child({ component: 'requests' });
  // Tunnel labels: relay.yaml's tunnels as they are now, and those agents served (relay/metrics.ts).
  const metrics = new RelayMetrics(registry, () => live.config.tunnels);
  const live = await LiveConfig.create(config, { publicUrlFor, log: requestLog, metrics });
  // Recent exchanges for the admin listener (relay/inspect.ts).
  const inspect = new RelayInspect(config.inspect);
  // Provider → Client Tracker messages, once a clienttracker tunnel is configured (now or after a reload).
  let egress: EgressHandler | undefined;
  const ensureEgress = async (): Promise<void> => {
    if (egress || !hasClientTracker(live.config)) return;
    const ct = await loadClientTracker();
    egress ??= ct.createEgressHandler(live, log.child({ component: 'egress' }), { metrics, inspect: (r) => inspect.egress(r) });
  };
  await ensureEgress();
  // Several nodes behind one load balancer: the others, and forwarding to them.
  const cluster = config.cluster
    ? new Cluster({
      config: config.cluster,
      file: config.file,
      registry,
      log: log.child({ component: 'cluster' }),
      window: () => live.config.streamWindow,
      heartbeat: () => live.config.heartbeat,
      maxIncoming: () => live.config.limits.maxStreamsPerAgent * 100,
      connectTimeout: live.config.timeouts.handshake,
      handshakeTimeout: () => live.config.timeouts.handshake,
    })
    : undefined;
  const endpoint = new AgentEndpoint({
    live,
    registry,
    log: log.child({ component: 'agents' }),
    publicUrlFor,
    nodes: cluster ? () => ({ node: cluster.nodeId, nodes: cluster.nodes() }) : undefined,
    onAgentExchange: (exchange, agent) => {
      if (egress) egress(exchange, agent);
      else endpoint.refuseEgress(exchange, agent);
    },
  });
  const admission = new Admission(live, registry, !!config.tls, cluster);
  if (cluster) {
    let scheduled = false;
    cluster.on('change', () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        endpoint.announceNodes();
      });
    });
    metrics.watchCluster(cluster);
    await cluster.start();
  }
  const requests = new PublicRequests({ admission, log: requestLog, kindOf: (tunnel) => live.kindOf(tunnel), metrics, inspect });

  const serverOptions = {
    maxHeaderSize: config.limits.maxHeaderSize,
    keepAliveTimeout: 65_000,
    requestTimeout: 0,
    headersTimeout: 30_000,
    // No `shouldUpgradeCallback` (Node ≥ 22.23 / 24.9): with it declining
    // `Upgrade: h2c`, Node 22.23.3 and 24.21.0 answer that request but never
    // parse a request pipelined behind it, and the connection hangs. Every
    // upgrade comes to 'upgrade'; PublicUpgrades hands all but WebSocket
    // back to this server as a plain request, on every Node line.
  } as http.ServerOptions;
  const server = config.tls
    ? https.createServer({ ...serverOptions, cert: config.tls.cert.text, key: config.tls.key.text })
    : http.createServer(serverOptions);
  // Every field the caller sent is read (their size is bounded by
  // maxHeaderSize): Node's count limit would drop fields silently.
  server.maxHeadersCount = 0;
  const upgrades = new PublicUpgrades(server, admission, requestLog, metrics);

  server.on('request', requests.handle);
  server.on('checkContinue', requests.handleExpectContinue);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const path = req.url?.split('?')[0];
    if (path === config.agentPath) endpoint.handleUpgrade(req, socket, head);
    else upgrades.handle(req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code !== 'ECONNRESET') log.info({ code: err.code, reason: err.message }, 'malformed request from client');
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  // A reconnect storm is thousands of agents dialing within a second; a connection the kernel drops
  // because the accept queue is full waits for a SYN-ACK retransmission (1 s, 3 s, 7 s...) while the relay idles.
  const addr = await listenOrExplain(server, config.listen, { file: config.file, key: 'listen' }, PUBLIC_LISTEN_BACKLOG);
  const address = { host: addr.address, port: addr.port };
  // listen port 0 (tests, demo fallback): the default public URL names the port actually bound.
  if (config.listen.port === 0) publicUrl = publicUrl.replace(/:0$/, `:${addr.port}`);
  log.info(
    { listen: formatHostPort(address), publicUrl, agentPath: config.agentPath, tls: !!config.tls, tunnels: Object.keys(config.tunnels) },
    'relay listening',
  );

  /** What a reload to `next` does to served tunnels' protection (relay/policy-changes.ts). */
  const policyReport = (prev: RelayConfig, next: RelayConfig) => {
    const servedNames = registry.all().flatMap((a) => a.tunnels);
    const served = (t: string): boolean => registry.agentsOf(t).length > 0 || (cluster?.knows(t) ?? false);
    return { changes: weakenedPolicies(prev, next, served, servedNames), notServed: undeclaredServed(next, servedNames) };
  };

  let closing: Promise<void> | undefined;
  let draining = false;
  let reloading: Promise<ReloadResult> | undefined;

  const reload = (): Promise<ReloadResult> =>
    (reloading ??= (async (): Promise<ReloadResult> => {
      // A refused reload awaits nothing: without this, its `finally` would clear `reloading` before `??=` stores the settled promise, and every later reload would get this answer again.
      await Promise.resolve();
      try {
        if (closing) return { ok: false, message: 'the relay is shutting down' };
        let next: RelayConfig;
        try {
          next = loadRelayConfig(config.file);
        } catch (err) {
          const message = isCtbridgeError(err) ? err.userMessage : String(err);
          log.error({ file: config.file, err: message }, 'reload refused: the config is invalid; the running config stays');
          return { ok: false, message };
        }
        // cluster: what cannot change live refuses the whole reload (nothing silently kept).
        const clusterRestart = clusterRestartOnly(config.cluster, next.cluster);
        if (clusterRestart.length) {
          const message = `reload refused: ${clusterRestart.join('; ')}; the running config stays`;
          log.error({ file: config.file, refused: clusterRestart }, message);
          return { ok: false, message };
        }
        const restart = live.restartOnly(next);
        const policy = policyReport(live.config, next);
        await live.replace(next);
        const clusterChanged = cluster && next.cluster ? await cluster.reconfigure(next.cluster) : [];
        await ensureEgress();
        configureRedaction(next.log.redact);
        inspect.update(next.inspect);
        log.level = next.log.level;
        if (next.tls && config.tls && server instanceof https.Server) server.setSecureContext({ cert: next.tls.cert.text, key: next.tls.key.text });
        const cut = endpoint.recheckAll();
        log.info({ file: config.file, tunnels: Object.keys(next.tunnels), keys: live.verifier.keyIds, agentsCutOff: cut, cluster: clusterChanged.length ? clusterChanged : undefined, needRestart: restart.length ? restart : undefined }, 'config reloaded');
        if (policy.changes.length) log.warn({ file: config.file, changes: policy.changes }, 'reload weakened the policy of tunnels agents serve');
        if (policy.notServed.length) log.warn({ file: config.file, tunnels: policy.notServed }, 'tunnels not served any more: relay.yaml does not declare them and requireDeclaredTunnels is on');
        const told = describeChanges(policy.changes, policy.notServed);
        return { ok: true, message: `reloaded ${config.file}${cut ? `; ${cut} agent connection(s) closed` : ''}${clusterChanged.length ? `; ${clusterChanged.join(', ')}` : ''}${restart.length ? `; restart to change ${restart.join(', ')}` : ''}${told ? `; ${told}` : ''}` };
      } finally {
        reloading = undefined;
      }
    })());

  const admin = await startAdminServer(config.admin, config.file, log, withInspector(inspectRoutes({
    role: 'relay',
    ring: () => (inspect.enabled ? inspect.ring : undefined),
    file: () => live.config.file,
  }), relayAdminRoutes({
    started, live, registry, metrics, address, publicUrl: () => publicUrl, reload,
    ready: () => {
      if (draining) return { ready: false, reason: 'shutting down' };
      if (cluster && !cluster.synced) return { ready: false, reason: 'joining the cluster: asking the other nodes which tunnels they serve' };
      return { ready: true, reason: `listening on ${formatHostPort(address)}${cluster ? ` as node ${cluster.nodeId} of ${cluster.nodes().length}` : ''}` };
    },
    cluster: () => cluster?.status(),
    recentExchanges: () => (inspect.enabled ? inspect.ring.list({}, 10) : undefined),
  })));

  /**
   * SIGTERM: not ready at once (a load balancer stops sending here); the
   * other nodes stop forwarding here and agents are told to connect
   * elsewhere; requests keep being taken for `timeouts.drainDelay`; then the
   * listener closes and in-flight exchanges get up to `shutdownGrace`.
   */
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const { shutdownGrace: grace, drainDelay } = live.config.timeouts;
      draining = true;
      log.info({ inFlight: requests.inFlight, graceMs: grace, drainDelayMs: drainDelay }, 'relay shutting down');
      cluster?.drain();
      endpoint.goawayAll('relay shutting down');
      if (drainDelay > 0) await new Promise((r) => setTimeout(r, drainDelay));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + grace;
      // Event-driven: wakes when the last request or exchange ends (a keep-alive caller may still start one, hence the loop).
      while ((requests.inFlight > 0 || registry.all().some((a) => a.session.exchangeCount > 0)) && Date.now() < deadline) {
        const left = deadline - Date.now();
        await Promise.all([requests.whenIdle(left), ...registry.all().map((a) => a.session.whenIdle(left))]);
      }
      if (requests.inFlight > 0) log.warn({ inFlight: requests.inFlight }, 'grace period over: cutting requests still in flight');
      endpoint.closeAll(CloseCode.GOING_AWAY, 'relay shutting down');
      egress?.close();
      upgrades.closeAll();
      server.closeAllConnections();
      await closed;
      await cluster?.close();
      await admin?.close();
      log.info('relay stopped');
    })());

  return { address, adminAddress: admin?.address, registry, reload, close };
}
