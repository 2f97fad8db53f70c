/**
 * The relay's public side: every HTTP request and WebSocket upgrade that is
 * not an agent connecting. It finds the tunnel, applies the tunnel's policy,
 * sets the forwarding headers, and hands the request to http-proxy-3 with the
 * tunnel's stream-backed http.Agent.
 */
import { randomBytes } from 'node:crypto';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { RelayConfig, RelayTunnelConfig } from '../src/config/index.js';
import { CtbridgeError, isCtbridgeError } from '../src/errors.js';
import { pathAllowed } from '../src/http/allow-paths.js';
import { BodyLimit, declaredLength, tooLarge } from '../src/http/body-limit.js';
import { sendError } from '../src/http/error-response.js';
import { flushHeadersIfIdle } from '../src/http/flush-headers.js';
import { hopByHopHeaders, stripHopByHop } from '../src/http/hop-by-hop.js';
import type { Logger } from '../src/log.js';
import { REQUEST_ID_HEADER } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import type { AgentRegistry } from './agent-registry.js';
import { resolveForwarded, setForwardedHeaders } from './forwarded.js';
import { routeRequest, type Route } from './routing.js';
import { TunnelHttpAgent } from './tunnel-http-agent.js';
import type { RelayMetrics } from './metrics.js';
import type { ExchangeContext, KindHandler, KindHandlerLookup } from './tunnel-kind.js';
import { writeUpgradeError } from './upgrade-error.js';

/** What the handler needs to know per request, kept off the hot path's allocations. */
interface Exchange {
  id: string;
  route: Route;
  policy: TunnelPolicy;
  client: string;
  start: number;
  bytesIn: number;
  bytesOut: number;
  idleTimedOut: boolean;
  kind: KindHandler | undefined;
  /** The request down the tunnel, once it has a stream; aborted when the relay answers early. */
  proxyReq?: ClientRequest;
  failed?: boolean;
}

export type TunnelPolicy = Pick<RelayTunnelConfig, 'name' | 'kind' | 'allowFrom' | 'allowPaths' | 'maxRequestBody' | 'timeouts'>;

export interface RequestHandlerOptions {
  config: RelayConfig;
  registry: AgentRegistry;
  log: Logger;
  encrypted: boolean;
  /** Tunnel kinds that see responses or format errors differently (clienttracker). */
  kindHandler?: KindHandlerLookup;
  metrics?: RelayMetrics;
}

const kExchange = Symbol('ctbridge.exchange');
type WithExchange = IncomingMessage & { [kExchange]?: Exchange };

export class RequestHandler {
  private readonly proxy = createProxyServer({ xfwd: false, prependPath: false, toProxy: true, changeOrigin: false });
  private readonly agents = new Map<string, TunnelHttpAgent>();
  private readonly defaults: TunnelPolicy;
  /** Requests in flight, for graceful shutdown. */
  inFlight = 0;

  constructor(private readonly opts: RequestHandlerOptions) {
    const { limits, timeouts } = opts.config;
    this.defaults = {
      name: '',
      kind: 'http',
      allowFrom: undefined,
      allowPaths: undefined,
      maxRequestBody: limits.maxRequestBody,
      timeouts: { request: timeouts.request, idle: timeouts.idle },
    };
    this.proxy.on('proxyReq', this.onProxyReq);
    this.proxy.on('proxyRes', this.onProxyRes);
  }

  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const id = nextRequestId();
    const seen: { tunnel?: string } = {};
    let ex: Exchange;
    try {
      ex = this.admit(req, id, seen);
    } catch (err) {
      const e = asCtbridgeError(err);
      this.opts.log.info({ requestId: id, tunnel: seen.tunnel, method: req.method, path: redactUrl(req.url ?? ''), status: e.status, code: e.code }, 'request refused');
      // Only names the relay knows become labels: a caller cannot grow the metric set.
      const known = seen.tunnel && e.code !== 'CTB_TUNNEL_UNKNOWN' ? seen.tunnel : '';
      res.once('close', () => this.opts.metrics?.request(known, res.statusCode, 0));
      this.sendErrorFor(res, e, { requestId: id, tunnel: seen.tunnel ?? '', url: req.url ?? '' }, seen.tunnel ? this.opts.kindHandler?.(seen.tunnel) : undefined);
      return;
    }
    (req as WithExchange)[kExchange] = ex;
    this.inFlight++;
    res.setHeader(REQUEST_ID_HEADER, id);
    let body: BodyLimit | undefined;
    const timer = setTimeout(() => {
      this.fail(req, res, ex, new CtbridgeError('CTB_REQUEST_TIMEOUT', `tunnel '${ex.route.tunnel}' did not complete the request within ${ex.policy.timeouts.request} ms`, { hint: "raise timeouts.request for this tunnel if it serves long-held requests" }));
    }, ex.policy.timeouts.request);
    res.once('close', () => {
      clearTimeout(timer);
      this.inFlight--;
      if (body) ex.bytesIn = body.bytes;
      this.logDone(req, res, ex);
    });
    const declared = declaredLength(req.headers['content-length']);
    if (declared !== undefined) {
      ex.bytesIn = declared;
      if (declared > ex.policy.maxRequestBody) {
        this.fail(req, res, ex, tooLarge('the request body', ex.policy.maxRequestBody));
        return;
      }
    } else if (req.headers['transfer-encoding']) {
      body = new BodyLimit(ex.policy.maxRequestBody, 'the request body');
      req.pipe(body);
      body.on('error', (err) => this.fail(req, res, ex, asCtbridgeError(err)));
    }
    stripHopByHop(req.headers);
    req.url = ex.route.url;
    this.proxy.web(
      req,
      res,
      {
        target: TARGET,
        agent: this.agentFor(ex.route.tunnel),
        proxyTimeout: ex.policy.timeouts.idle,
        buffer: body,
        selfHandleResponse: ex.kind?.selfHandleResponse ?? false,
      },
      (err) => this.fail(req, res, ex, this.classify(err, ex)),
    );
  };

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const id = nextRequestId();
    let ex: Exchange;
    try {
      ex = this.admit(req, id, {});
    } catch (err) {
      writeUpgradeError(socket, asCtbridgeError(err), id);
      return;
    }
    stripHopByHop(req.headers, true);
    req.url = ex.route.url;
    this.opts.log.info({ requestId: id, tunnel: ex.route.tunnel, path: redactUrl(ex.route.url), client: ex.client }, 'websocket upgrade');
    this.proxy.ws(req, socket, head, { target: TARGET, agent: this.agentFor(ex.route.tunnel) }, (err) => {
      writeUpgradeError(socket, this.classify(err, ex), id);
    });
  };

  /** Route and policy checks; throws a CtbridgeError to refuse. */
  private admit(req: IncomingMessage, id: string, seen: { tunnel?: string }): Exchange {
    const { config, registry } = this.opts;
    const route = routeRequest(req.url ?? '/', req.headers.host, config.baseDomain);
    if (!route) {
      throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', 'this URL names no tunnel', { hint: `call ${config.publicUrl}/t/<tunnel>/<path>` });
    }
    seen.tunnel = route.tunnel;
    const configured = config.tunnels[route.tunnel];
    if (!configured && !registry.hasSeen(route.tunnel)) {
      throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', `no tunnel named '${route.tunnel}' on this relay`, {
        hint: 'check the tunnel name in the URL; an agent serving it has never connected here',
      });
    }
    const policy = configured ?? { ...this.defaults, name: route.tunnel };
    const fwd = resolveForwarded(req, config.trustedProxies, this.opts.encrypted);
    if (policy.allowFrom && !policy.allowFrom.contains(fwd.client)) {
      throw new CtbridgeError('CTB_SOURCE_NOT_ALLOWED', `address ${fwd.client} may not call tunnel '${route.tunnel}'`, {
        hint: `add it to tunnels.${route.tunnel}.allowFrom in the relay config if it should`,
      });
    }
    if (!pathAllowed(route.path, policy.allowPaths)) {
      throw new CtbridgeError('CTB_PATH_NOT_ALLOWED', `path not exposed by tunnel '${route.tunnel}'`);
    }
    const picked = registry.pick(route.tunnel);
    if ('none' in picked) {
      throw new CtbridgeError('CTB_AGENT_NOT_CONNECTED', `the on-premise agent for tunnel '${route.tunnel}' is not connected to the relay`, {
        hint: 'ask the IT team to check the ctbridge agent service and its log',
      });
    }
    if ('busy' in picked) {
      throw new CtbridgeError('CTB_AGENT_BUSY', `every agent for tunnel '${route.tunnel}' is at its limit of ${config.limits.maxStreamsPerAgent} concurrent streams`, {
        hint: 'retry shortly, or raise limits.maxStreamsPerAgent',
      });
    }
    setForwardedHeaders(req.headers, fwd);
    req.headers[REQUEST_ID_HEADER] = id;
    const kind = this.opts.kindHandler?.(route.tunnel);
    return { id, route, policy, client: fwd.client, start: performance.now(), bytesIn: 0, bytesOut: 0, idleTimedOut: false, kind };
  }

  private agentFor(tunnel: string): TunnelHttpAgent {
    let agent = this.agents.get(tunnel);
    if (!agent) {
      agent = new TunnelHttpAgent(this.opts.registry, tunnel);
      this.agents.set(tunnel, agent);
    }
    return agent;
  }

  private readonly onProxyReq = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const ex = (req as WithExchange)[kExchange];
    if (!ex) return;
    if (ex.failed) {
      proxyReq.destroy();
      return;
    }
    ex.proxyReq = proxyReq;
    proxyReq.once('timeout', () => (ex.idleTimedOut = true));
  };

  private readonly onProxyRes = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const ex = (req as WithExchange)[kExchange];
    if (!ex) return;
    // The agent's keep-alive is about the tunnel stream, not the client's
    // connection: answer the client's own choice (http-proxy would copy the agent's).
    for (const name of hopByHopHeaders(proxyRes.headers)) if (name !== 'transfer-encoding') delete proxyRes.headers[name];
    proxyRes.headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    proxyRes.on('data', (chunk: Buffer) => (ex.bytesOut += chunk.length));
    if (ex.kind?.selfHandleResponse) ex.kind.handleResponse?.(proxyRes, req, res, { requestId: ex.id, tunnel: ex.route.tunnel, url: ex.route.url });
    else flushHeadersIfIdle(res);
  };

  private classify(err: Error, ex: Exchange): CtbridgeError {
    if (ex.idleTimedOut) {
      return new CtbridgeError('CTB_TARGET_TIMEOUT', `tunnel '${ex.route.tunnel}' sent nothing for ${ex.policy.timeouts.idle} ms`, {
        hint: 'the intranet service is slow or stuck; raise timeouts.idle for long-held requests',
      });
    }
    if (isCtbridgeError(err)) return err;
    return new CtbridgeError('CTB_AGENT_DISCONNECTED', `the tunnel stream for '${ex.route.tunnel}' failed: ${err.message}`, { cause: err });
  }

  private fail(req: IncomingMessage, res: ServerResponse, ex: Exchange, err: CtbridgeError): void {
    // Whatever the relay answers itself, the half-sent request down the tunnel must not linger.
    ex.failed = true;
    ex.proxyReq?.destroy();
    if (res.headersSent) {
      this.opts.log.warn({ requestId: ex.id, tunnel: ex.route.tunnel, code: err.code, err }, 'response cut short');
      res.destroy();
      return;
    }
    (res as ServerResponse & { ctbError?: string }).ctbError = err.code;
    this.sendErrorFor(res, err, { requestId: ex.id, tunnel: ex.route.tunnel, url: ex.route.url }, ex.kind);
    req.unpipe();
    req.resume();
  }

  private sendErrorFor(res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext, kind: KindHandler | undefined): void {
    if (err.code === 'CTB_AGENT_BUSY') res.setHeader('retry-after', '1');
    if (kind && !res.headersSent) kind.sendError(res, err, ctx);
    else sendError(res, err, { requestId: ctx.requestId, details: detailsFor(err, ctx.tunnel || undefined) });
  }

  private logDone(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
    const ms = performance.now() - ex.start;
    this.opts.metrics?.request(ex.route.tunnel, res.statusCode, ms / 1000);
    this.opts.log.info(
      {
        requestId: ex.id,
        tunnel: ex.route.tunnel,
        method: req.method,
        path: redactUrl(ex.route.url),
        status: res.statusCode,
        bytesIn: ex.bytesIn,
        bytesOut: ex.bytesOut,
        durationMs: Math.round(ms * 10) / 10,
        client: ex.client,
        code: (res as ServerResponse & { ctbError?: string }).ctbError,
        completed: res.writableFinished,
      },
      'request',
    );
  }

  /** Stops pooling streams (shutdown). */
  destroyAgents(): void {
    for (const a of this.agents.values()) a.destroy();
  }
}

/**
 * Request ids: a random per-process prefix and a counter, 16 hex digits, unique
 * across restarts and relay instances without a getrandom() call per request.
 */
const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  idCounter = (idCounter + 1) >>> 0;
  return ID_PREFIX + idCounter.toString(16).padStart(8, '0');
}

/** The relay never names a host: the agent decides where a tunnel's streams go. */
const TARGET = { protocol: 'http:', host: 'tunnel', hostname: 'tunnel', port: 80 } as const;

function asCtbridgeError(err: unknown): CtbridgeError {
  return isCtbridgeError(err) ? err : new CtbridgeError('CTB_BAD_REQUEST', (err as Error).message ?? String(err));
}

/** The UC web service's wording for the same condition, so existing clients recognise it. */
function detailsFor(err: CtbridgeError, tunnel?: string): string {
  if (err.code === 'CTB_AGENT_NOT_CONNECTED' && tunnel) return `agent not connected here: [${tunnel}]`;
  return err.message;
}
