/**
 * The relay's public side for plain HTTP: each request is parsed once (by
 * Node's server), admitted (relay/admission.ts), and sent to the agent that
 * admission picked as one exchange: the request head in one frame, the body
 * under the exchange's credit, then END. The agent's response head and body
 * come back the same way and are written with writeHead/write/end.
 *
 *   caller ──HTTP──▶ PublicRequests ──exchange──▶ agent (agent/tunnel-requests.ts)
 *
 * `Expect: 100-continue` is answered by the relay itself once the request is
 * admitted and its declared size is within the limit (so a refused upload is
 * never sent); interim 1xx answers of the target are not passed on; request
 * and response trailers are dropped (docs/wire-protocol.md).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CtbridgeError, isCtbridgeError } from '../src/errors.js';
import { tooLarge } from '../src/http/body-limit.js';
import { declaredLength } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { ResponseHead } from '../src/mux/heads.js';
import { redactUrl } from '../src/redact.js';
import type { Admission, Admitted } from './admission.js';
import type { RelayInspect } from './inspect.js';
import type { RelayMetrics } from './metrics.js';
import { requestHead } from './request-head.js';
import type { ExchangeContext, KindHandler, KindHandlerLookup } from './tunnel-kind.js';

export interface PublicRequestsOptions {
  admission: Admission;
  log: Logger;
  kindOf: KindHandlerLookup;
  metrics?: RelayMetrics;
  /** Keeps recent exchanges for the admin listener (relay/inspect.ts). */
  inspect?: RelayInspect;
}

/**
 * Request ids: a random per-process prefix and a counter, 16 hex digits,
 * unique across restarts and relay instances without a getrandom() call per
 * request.
 */
const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;
export function nextRequestId(): string {
  idCounter = (idCounter + 1) >>> 0;
  return ID_PREFIX + idCounter.toString(16).padStart(8, '0');
}

export function asCtbridgeError(err: unknown): CtbridgeError {
  return isCtbridgeError(err) ? err : new CtbridgeError('CTB_BAD_REQUEST', err instanceof Error ? err.message : String(err));
}

/** A request is sent on at most this many times after relay nodes turned it away. */
const MAX_HOPS = 2;

/** Codes after which the caller should simply try again shortly. */
const RETRY_SOON = new Set(['CTB_AGENT_BUSY', 'CTB_SHUTTING_DOWN']);

export class PublicRequests {
  /** Requests being answered, for graceful shutdown. */
  inFlight = 0;

  constructor(private readonly opts: PublicRequestsOptions) {}

  /** The server's 'request' event. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, false);
  };

  /** The server's 'checkContinue' event: `Expect: 100-continue`. */
  readonly handleExpectContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, true);
  };

  private serve(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const requestId = nextRequestId();
    const seen: { tunnel?: string } = {};
    let admitted: Admitted;
    try {
      admitted = this.opts.admission.admit(req, seen);
    } catch (err) {
      this.refuse(req, res, requestId, seen.tunnel, asCtbridgeError(err));
      return;
    }
    new PublicRequest(this, this.opts, req, res, requestId, admitted).start(expectsContinue);
  }

  /** Answers a request the relay turned down before any exchange. */
  private refuse(req: IncomingMessage, res: ServerResponse, requestId: string, tunnel: string | undefined, err: CtbridgeError): void {
    const { log, metrics, kindOf } = this.opts;
    log.info({ requestId, tunnel, method: req.method, path: redactUrl(req.url ?? ''), status: err.status, code: err.code }, 'request refused');
    // Only names the relay knows become labels: a caller cannot grow the metric set.
    const known = tunnel && err.code !== 'CTB_TUNNEL_UNKNOWN' ? tunnel : '';
    res.once('close', () => metrics?.request(known, res.statusCode, 0, { code: err.code }));
    const ctx: ExchangeContext = { requestId, tunnel: tunnel ?? '', method: req.method ?? 'GET', url: req.url ?? '' };
    // The body was not read: do not keep a connection whose next bytes are an unread upload.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
    answerError(res, err, ctx, kindOf(tunnel ?? ''));
  }
}

/** Answers `err` in the tunnel kind's format. */
export function answerError(res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext, kind: KindHandler): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  ctx.code = err.code;
  if (RETRY_SOON.has(err.code)) res.setHeader('retry-after', '1');
  kind.sendError(res, err, ctx);
}

/** One admitted request: its exchange with the agent, timers, and log line. */
class PublicRequest {
  private ex: Exchange | undefined;
  private readonly ctx: ExchangeContext;
  private readonly kind: KindHandler;
  private readonly start0 = performance.now();
  private lastActivity = this.start0;
  private timer: NodeJS.Timeout | undefined;
  private bytesIn = 0;
  private failed = false;
  /** Times the exchange was sent elsewhere after a node turned it away. */
  private hops = 0;

  constructor(
    private readonly owner: PublicRequests,
    private readonly opts: PublicRequestsOptions,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly admitted: Admitted,
  ) {
    const { route } = admitted;
    this.ctx = { requestId, tunnel: route.tunnel, method: req.method ?? 'GET', url: route.url };
    this.kind = opts.kindOf(route.tunnel);
  }

  start(expectsContinue: boolean): void {
    const { req, res, admitted } = this;
    const { policy } = admitted;
    this.owner.inFlight++;
    res.once('close', this.onClose);
    this.opts.inspect?.watch(req, res, this.ctx, () => ({ response: this.ex?.response?.headers, agentId: admitted.hop.agent?.agentId, node: admitted.hop.node, bytesIn: this.bytesIn, bytesOut: this.ex?.bytesIn ?? 0 }));
    const declared = declaredLength(req.headers['content-length']);
    if (declared !== undefined && declared > policy.maxRequestBody) {
      this.bytesIn = declared;
      res.shouldKeepAlive = false;
      this.fail(tooLarge('request', policy.maxRequestBody));
      return;
    }
    const hasBody = (declared !== undefined && declared > 0) || req.headers['transfer-encoding'] !== undefined;
    if (!this.open(hasBody)) return;
    this.armTimer();
    if (hasBody) {
      if (expectsContinue) res.writeContinue();
      this.sendBody(this.ex!);
    }
  }

  /** Opens the exchange on the hop admission picked; false when that failed (the caller has been answered). */
  private open(hasBody: boolean): boolean {
    const { req, admitted } = this;
    try {
      this.ex = admitted.hop.session.request(requestHead(req, admitted, this.requestId, 'http'), !hasBody);
    } catch (err) {
      this.fail(asCtbridgeError(err));
      return false;
    }
    this.ex.once('response', this.onResponse);
    this.ex.once('reset', hasBody ? this.onReset : this.onResetBodiless);
    return true;
  }

  /**
   * A request without a body that another relay node turned away before
   * any agent saw it (its last agent for the tunnel left between announcing
   * the tunnel and this exchange) is sent once more, to an agent here or
   * to another node. A request with a body is not: its bytes are gone.
   */
  private readonly onResetBodiless = (err: CtbridgeError): void => {
    const failedNode = this.admitted.hop.node;
    if (!this.failed && failedNode !== undefined && err.code === 'CTB_AGENT_NOT_CONNECTED' && this.hops < MAX_HOPS) {
      const hop = this.opts.admission.rehop(this.ctx.tunnel, failedNode);
      if (hop) {
        this.hops++;
        this.opts.log.debug({ requestId: this.requestId, tunnel: this.ctx.tunnel, failedNode, viaNode: hop.node }, 'relay node had no agent for the tunnel any more; sending the request elsewhere');
        this.ex!.off('response', this.onResponse);
        this.admitted.hop = hop;
        this.open(false);
        return;
      }
    }
    this.onReset(err);
  };

  private sendBody(ex: Exchange): void {
    const { req } = this;
    const limit = this.admitted.policy.maxRequestBody;
    req.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.lastActivity = performance.now();
      if (limit > 0 && this.bytesIn > limit) {
        this.res.shouldKeepAlive = false;
        this.fail(tooLarge('request', limit));
        return;
      }
      if (!ex.send(chunk)) req.pause();
    });
    ex.on('drain', () => req.resume());
    req.once('end', () => ex.end());
  }

  private readonly onResponse = (head: ResponseHead): void => {
    this.lastActivity = performance.now();
    const ex = this.ex!;
    if (head.status === 101) {
      ex.protocolError('a 101 answer to a request that asked for no upgrade');
      return;
    }
    ex.on('data', this.onActivity);
    this.kind.respond(ex, head, this.res, this.ctx);
  };

  private readonly onActivity = (): void => {
    this.lastActivity = performance.now();
  };

  private readonly onReset = (err: CtbridgeError): void => {
    if (this.failed) return;
    this.opts.log.info({ requestId: this.requestId, tunnel: this.ctx.tunnel, code: err.code, reason: err.message }, 'agent reset the exchange');
    this.fail(err);
  };

  /** One timer for both limits: the whole request, and silence from the agent. */
  private armTimer(): void {
    const { request, idle } = this.admitted.policy.timeouts;
    const now = performance.now();
    const requestLeft = this.start0 + request - now;
    const idleLeft = this.lastActivity + idle - now;
    if (requestLeft <= 0) {
      this.fail(new CtbridgeError('CTB_REQUEST_TIMEOUT', `tunnel '${this.ctx.tunnel}' did not complete the request within ${request} ms`, {
        hint: 'raise timeouts.request for this tunnel if it serves long-held requests',
        params: { seconds: request / 1000 },
      }));
      return;
    }
    if (idleLeft <= 0) {
      this.fail(new CtbridgeError('CTB_TARGET_TIMEOUT', `tunnel '${this.ctx.tunnel}' sent nothing for ${idle} ms`, {
        hint: 'the intranet service is slow or stuck; raise timeouts.idle for long-held requests',
        params: { seconds: idle / 1000 },
      }));
      return;
    }
    this.timer = setTimeout(this.onTimer, Math.min(requestLeft, idleLeft));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (!this.failed && !this.ex?.closed) this.armTimer();
  };

  /** Whatever went wrong: the exchange ends, and the caller gets the error or a cut response. */
  private fail(err: CtbridgeError): void {
    if (this.failed) return;
    this.failed = true;
    this.ex?.reset(err);
    const { res, req } = this;
    if (res.headersSent) {
      this.opts.log.warn({ requestId: this.requestId, tunnel: this.ctx.tunnel, code: err.code, err }, 'response cut short');
      this.ctx.code = err.code;
      res.destroy();
      return;
    }
    answerError(res, err, this.ctx, this.kind);
    req.resume();
  }

  private readonly onClose = (): void => {
    if (this.timer) clearTimeout(this.timer);
    this.owner.inFlight--;
    const { res } = this;
    if (!res.writableFinished && this.ex && !this.ex.closed) {
      this.ex.reset(new CtbridgeError('CTB_CANCELLED', 'the caller went away before the answer was complete'));
      this.ctx.code ??= 'CTB_CANCELLED';
    }
    this.logDone();
  };

  private logDone(): void {
    const { req, res, ctx, admitted } = this;
    const ms = performance.now() - this.start0;
    this.opts.metrics?.request(ctx.tunnel, res.statusCode, ms / 1000, { bytesIn: this.bytesIn, bytesOut: this.ex?.bytesIn ?? 0, code: ctx.code });
    if (!this.opts.log.isLevelEnabled('info')) return;
    this.opts.log.info(
      {
        requestId: this.requestId,
        tunnel: ctx.tunnel,
        agentId: admitted.hop.agent?.agentId,
        connectionId: admitted.hop.agent?.connectionId,
        viaNode: admitted.hop.node,
        method: req.method,
        path: redactUrl(ctx.url),
        status: res.statusCode,
        bytesIn: this.bytesIn,
        bytesOut: this.ex?.bytesIn ?? 0,
        durationMs: Math.round(ms * 10) / 10,
        client: admitted.forwarded.client,
        code: ctx.code,
        completed: res.writableFinished,
      },
      'request',
    );
  }
}
