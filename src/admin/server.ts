/**
 * The admin listener of a relay or an agent (`admin.listen`, loopback by
 * default), separate from any public port:
 *
 *   GET  /healthz      200 while the process runs (liveness)
 *   GET  /readyz       200 when ready to serve, else 503 with the reason
 *   GET  /metrics      Prometheus text
 *   GET  /api/status   the status as JSON (what `ctbridge status` prints)
 *   GET  /             the status page, for people
 *   POST /reload       read the config file again (what SIGHUP does; Windows has no SIGHUP)
 *
 * First the `Host` a request names must be one of the listener's own names
 * (an IP literal, `localhost`, or `admin.hosts`), else 421: DNS rebinding
 * (src/admin/guard.ts). Then only callers in `admin.allowFrom` get an
 * answer; others get 403. POST /reload refuses what a browser page of
 * another site could send (403). Every answer carries a strict
 * Content-Security-Policy, X-Frame-Options: DENY and nosniff, and no CORS
 * header. A reload changes who may (allowFrom, hosts), not where it listens
 * (a restart does).
 */
import http from 'node:http';
import type { AdminConfig } from '../config/common.js';
import { formatHostPort, type CidrList } from '../config/units.js';
import { peerAddress } from '../http/client-address.js';
import { listenOnFirstFree } from '../listen.js';
import { untrusted } from '../log-text.js';
import type { Logger } from '../log.js';
import { crossSiteRefusal, hostRefusal, securityHeaders } from './guard.js';
import { EXCHANGES_CSP } from './exchanges-page.js';
import { PAGE_STYLE_HASH } from './page.js';

export interface Readiness {
  ready: boolean;
  /** Why not (or what it is ready for). */
  reason: string;
}

export interface ReloadResult {
  ok: boolean;
  message: string;
}

export interface AdminRoutes {
  ready(): Readiness;
  status(): unknown;
  page(): string;
  metrics(): Promise<{ contentType: string; text: string }>;
  reload(): Promise<ReloadResult>;
  /** More routes (the inspector's: src/admin/exchanges-routes.ts); true when it answered. */
  extra?(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean;
  /** admin.allowFrom as it is now (a reload may change it); default: the one the listener started with. */
  allowFrom?(): CidrList;
  /** admin.hosts as it is now; default: the one the listener started with. */
  hosts?(): readonly string[];
}

export interface AdminHandle {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

const SECURITY_HEADERS = securityHeaders({ styles: [PAGE_STYLE_HASH, EXCHANGES_CSP.style], scripts: [EXCHANGES_CSP.script] });

/** An admin answer (the security headers are already set on `res`). */
export function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export const json = (res: http.ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 2)}\n`);

export async function startAdminServer(admin: AdminConfig, file: string, log: Logger, routes: AdminRoutes): Promise<AdminHandle | undefined> {
  if (!admin.listen) return undefined;
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => {
    // Every answer, the inspector's routes' too, carries the security headers.
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const from = peerAddress(req.socket);
    const path = (req.url ?? '/').split('?')[0];
    // Who may call at all first (an address outside allowFrom learns nothing more), then whether it names this listener.
    if (!(routes.allowFrom?.() ?? admin.allowFrom).contains(from)) {
      log.warn({ from, method: req.method, path: untrusted(path, 100) }, 'admin request refused: the address is not in admin.allowFrom');
      req.resume();
      json(res, 403, { error: 'this address may not use this listener' });
      return;
    }
    const wrongHost = hostRefusal(req.headers.host, routes.hosts?.() ?? admin.hosts);
    if (wrongHost) {
      log.warn({ from, host: untrusted(req.headers.host, 100), method: req.method, path: untrusted(path, 100) }, `admin request refused: ${wrongHost}`);
      req.resume();
      json(res, 421, { error: `${wrongHost}; a web page on another site may be trying to read this listener (DNS rebinding)` });
      return;
    }
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && path === '/healthz') return json(res, 200, { status: 'alive' });
    if (get && path === '/readyz') {
      const r = routes.ready();
      return json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', reason: r.reason });
    }
    if (get && path === '/metrics') {
      void routes.metrics().then(
        (m) => send(res, 200, m.contentType, m.text),
        (err: unknown) => json(res, 500, { error: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    if (get && path === '/api/status') return json(res, 200, routes.status());
    if (get && (path === '/' || path === '/index.html')) return send(res, 200, 'text/html; charset=utf-8', routes.page());
    if (req.method === 'POST' && path === '/reload') {
      req.resume();
      const crossSite = crossSiteRefusal(req.headers);
      const asked = { from, via: 'HTTP POST /reload', userAgent: untrusted(req.headers['user-agent'], 100), origin: untrusted(req.headers.origin, 100) };
      if (crossSite) {
        log.warn(asked, `reload refused: ${crossSite}`);
        json(res, 403, { ok: false, message: `reload refused: ${crossSite}` });
        return;
      }
      log.info(asked, 'reloading config');
      void routes.reload().then((r) => json(res, r.ok ? 200 : 409, r));
      return;
    }
    if (routes.extra?.(req, res, path)) return;
    json(res, 404, { error: 'not found', paths: ['/healthz', '/readyz', '/metrics', '/api/status', '/', 'POST /reload'] });
  });
  const bound = await listenOnFirstFree(server, admin.listen, admin.fallbackPorts, { file, key: 'admin.listen' });
  const address = { host: bound.address, port: bound.port };
  if (address.port !== admin.listen.port && admin.listen.port !== 0) {
    // admin.listen not set and its default port taken (another agent on the host): `ctbridge status --config` finds this one by its config file.
    log.warn({ listen: formatHostPort(address), defaultPort: admin.listen.port }, 'admin listener on a fallback port: the default one is in use');
  }
  log.info({ listen: formatHostPort(address), allowFrom: admin.allowFrom.toJSON() }, 'admin listening');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
