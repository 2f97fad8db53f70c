/**
 * The relay process: one public HTTP(S) listener that serves agents'
 * WebSocket connections on `agentPath` and everything else as tunnel
 * traffic.
 *
 *   public request → public-requests.ts / public-upgrades.ts
 *                  → admission.ts (route, policy, the one agent)
 *                  → exchange over the agent's session (src/mux)
 *                  → agent → target, and back
 */
import http from 'node:http';
import https from 'node:https';
import { createAgentTokenVerifier } from '../src/agent-auth.js';
import { formatHostPort, type RelayConfig } from '../src/config/index.js';
import { peerAddress } from '../src/http/client-address.js';
import type { Logger } from '../src/log.js';
import { CloseCode } from '../src/protocol.js';
import { Admission } from './admission.js';
import { listenOrExplain } from '../src/listen.js';
import { AgentEndpoint } from './agent-endpoint.js';
import { AgentRegistry } from './agent-registry.js';
import { httpKind } from './http-kind.js';
import { RelayMetrics } from './metrics.js';
import { PublicRequests } from './public-requests.js';
import { PublicUpgrades, isWebSocketUpgrade } from './public-upgrades.js';
import type { KindHandler } from './tunnel-kind.js';

export interface RelayHandle {
  /** Where the listener is bound (useful with port 0). */
  readonly address: { host: string; port: number };
  readonly registry: AgentRegistry;
  /** Stop accepting, let in-flight requests finish up to the grace period, then close agents. */
  close(): Promise<void>;
}

export async function startRelay(config: RelayConfig, log: Logger): Promise<RelayHandle> {
  // fleet-auth: every key of auth.keys, plus auth.revoked (src/agent-auth.ts).
  const verifier = createAgentTokenVerifier(config);
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  let publicUrl = config.publicUrl;
  const publicUrlFor = (tunnel: string): string => `${publicUrl}/t/${tunnel}/`;
  const requestLog = log.child({ component: 'requests' });
  const metrics = new RelayMetrics(
    () => registry.all().length,
    () => registry.all().reduce((n, a) => n + a.session.exchangeCount, 0),
  );
  // Client Tracker support (XML schemas in libxml2-wasm) loads only when a tunnel needs it.
  const ct = Object.values(config.tunnels).some((t) => t.kind === 'clienttracker') ? await import('./clienttracker/index.js') : undefined;
  const egress = ct?.createEgressHandler(config, log.child({ component: 'egress' }), { metrics });
  const endpoint = new AgentEndpoint({ config, registry, verifier, log: log.child({ component: 'agents' }), publicUrlFor, onAgentExchange: egress });
  const ctKinds = ct?.createKindHandlers(config, { publicUrlFor, log: requestLog, metrics });
  const kindOf = (tunnel: string): KindHandler => ctKinds?.get(tunnel) ?? httpKind;
  const admission = new Admission(config, registry, !!config.tls);
  const requests = new PublicRequests({ config, admission, log: requestLog, kindOf, metrics });

  const serverOptions: http.ServerOptions = {
    maxHeaderSize: config.limits.maxHeaderSize,
    keepAliveTimeout: 65_000,
    requestTimeout: 0,
    headersTimeout: 30_000,
    // Node ≥ 24.9: only WebSocket upgrades (and agents) leave the HTTP
    // server; `Upgrade: h2c` and the like are plain requests.
    shouldUpgradeCallback: isWebSocketUpgrade,
  } as http.ServerOptions;
  const server = config.tls
    ? https.createServer({ ...serverOptions, cert: config.tls.cert.text, key: config.tls.key.text })
    : http.createServer(serverOptions);
  // Every field the caller sent is read (their size is bounded by
  // maxHeaderSize): Node's count limit would drop fields silently.
  server.maxHeadersCount = 0;
  const upgrades = new PublicUpgrades(server, admission, requestLog);

  server.on('request', (req, res) => {
    if (req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: 'ok', agents: endpoint.sessionCount }));
      return;
    }
    if (req.url === '/metrics' && req.method === 'GET' && config.metrics.allowFrom.contains(peerAddress(req.socket))) {
      void metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      });
      return;
    }
    requests.handle(req, res);
  });
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

  // fleet-auth: a port in use or without permission is a config error naming file, key and address (src/listen.ts).
  const addr = await listenOrExplain(server, config.listen, { file: config.file, key: 'listen' });
  const address = { host: addr.address, port: addr.port };
  // listen port 0 (tests, demo fallback): the default public URL names the port actually bound.
  if (config.listen.port === 0) publicUrl = publicUrl.replace(/:0$/, `:${addr.port}`);
  log.info(
    { listen: formatHostPort(address), publicUrl, agentPath: config.agentPath, tls: !!config.tls, tunnels: Object.keys(config.tunnels) },
    'relay listening',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      log.info({ inFlight: requests.inFlight, graceMs: config.timeouts.shutdownGrace }, 'relay shutting down');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + config.timeouts.shutdownGrace;
      while (requests.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (requests.inFlight > 0) log.warn({ inFlight: requests.inFlight }, 'grace period over: cutting requests still in flight');
      endpoint.closeAll(CloseCode.GOING_AWAY, 'relay shutting down');
      egress?.close();
      upgrades.closeAll();
      server.closeAllConnections();
      await closed;
      log.info('relay stopped');
    })());

  return { address, registry, close };
}
