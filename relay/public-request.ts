/**
 * One admitted public request (relay/public-requests.ts): its exchange with
 * the agent admission picked, the relay's timers, the log line, and the
 * re-send to another agent or relay node when the exchange died before the
 * agent's response began and the request is safe to send again
 * (relay/resend.ts, docs/errors.md "Which requests the relay re-sends").
 */
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
import { BodyCopy, keepsBody, reportResend, resendReason, type BodyState } from './resend.js';
import type { ExchangeContext, KindHandler, KindHandlerLookup } from './tunnel-kind.js';

export interface PublicRequestsOptions {
  admission: Admission;
  log: Logger;
  kindOf: KindHandlerLookup;
  metrics?: RelayMetrics;
  /** Keeps recent exchanges for the admin listener (relay/inspect.ts). */
  inspect?: RelayInspect;
}

export function asCtbridgeError(err: unknown): CtbridgeError {
  return isCtbridgeError(err) ? err : new CtbridgeError('CTB_BAD_REQUEST', err instanceof Error ? err.message : String(err));
}

/** Codes after which the caller should simply try again shortly. */
const RETRY_SOON = new Set(['CTB_AGENT_BUSY', 'CTB_SHUTTING_DOWN']);

/** Answers `err` in the tunnel kind's format. */
export function answerError(res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext, kind: KindHandler): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  ctx.code = err.code;
  ctx.reason = err.userMessage;
  if (RETRY_SOON.has(err.code)) res.setHeader('retry-after', '1');
  kind.sendError(res, err, ctx);
}

/** One admitted request: its exchange with the agent (re-sent if need be), timers, and log line. */
export class PublicRequest {
  private ex: Exchange | undefined;
  private readonly ctx: ExchangeContext;
  private readonly kind: KindHandler;
  private readonly start0 = performance.now();
  private lastActivity = this.start0;
  private timer: NodeJS.Timeout | undefined;
  private bytesIn = 0;
  private failed = false;
  private hasBody = false;
  /** The request body, kept for a re-send (only for a method that may be re-sent). */
  private copy: BodyCopy | undefined;
  /** Times the request was sent again, to another agent or node. */
  private resends = 0;

  constructor(
    private readonly owner: { started(): void; finished(): void },
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
    this.owner.started();
    res.once('close', this.onClose);
    this.opts.inspect?.watch(req, res, this.ctx, () => ({ response: this.ex?.response?.headers, agentId: admitted.hop.agent?.agentId, node: admitted.hop.node, bytesIn: this.bytesIn, bytesOut: this.ex?.bytesIn ?? 0 }));
    const declared = declaredLength(req.headers['content-length']);
    if (declared !== undefined && declared > policy.maxRequestBody) {
      this.bytesIn = declared;
      res.shouldKeepAlive = false;
      this.fail(tooLarge('request', policy.maxRequestBody));
      return;
    }
    this.hasBody = (declared !== undefined && declared > 0) || req.headers['transfer-encoding'] !== undefined;
    if (this.hasBody && keepsBody(this.ctx.method)) this.copy = new BodyCopy();
    if (!this.open()) return;
    this.armTimer();
    if (this.hasBody) {
      if (expectsContinue) res.writeContinue();
      this.sendBody(this.ex!);
    }
  }

  /**
   * Opens the exchange on the current hop (admission's pick, or the one a
   * re-send picked); false when that failed and the caller has been answered.
   */
  private open(): boolean {
    const { req, admitted } = this;
    let ex: Exchange;
    try {
      ex = admitted.hop.session.request(requestHead(req, admitted, this.requestId, 'http'), !this.hasBody);
    } catch (err) {
      // The link closed under the pick: nothing was sent, so the usual rule decides.
      this.ex = undefined;
      this.onReset(asCtbridgeError(err));
      return !this.failed;
    }
    this.ex = ex;
    ex.once('response', this.onResponse);
    ex.once('reset', this.onReset);
    // A re-send: the kept body, whole (the first exchange streams it as it comes).
    const kept = this.hasBody ? this.copy?.bytes : undefined;
    if (kept) {
      ex.send(kept);
      ex.end();
    }
    return true;
  }

  private bodyState(): BodyState {
    if (!this.hasBody) return 'empty';
    return this.copy?.state ?? 'not_kept';
  }

  /**
   * The exchange died before the agent's response began: the request goes
   * to another hop when relay/resend.ts says it may; true when it did.
   */
  private resend(err: CtbridgeError): boolean {
    if (this.res.destroyed) return false; // the caller has gone
    const failed = this.admitted.hop;
    const reason = resendReason({
      method: this.ctx.method, code: err.code, viaNode: failed.node !== undefined,
      body: this.bodyState(), responseStarted: this.ex?.response !== undefined || this.res.headersSent, resends: this.resends,
    });
    if (!reason) return false;
    const hop = this.opts.admission.rehop(this.ctx.tunnel, failed, reason === 'node_turned_away');
    if (!hop) return false;
    this.resends++;
    reportResend(this.opts.log, this.opts.metrics, { requestId: this.requestId, tunnel: this.ctx.tunnel, method: this.ctx.method, reason, code: err.code, resends: this.resends, from: failed, to: hop });
    this.ex?.off('response', this.onResponse);
    this.admitted.hop = hop;
    this.lastActivity = performance.now();
    this.open();
    return true;
  }

  private sendBody(ex: Exchange): void {
    const { req } = this;
    const limit = this.admitted.policy.maxRequestBody;
    req.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.copy?.add(chunk);
      this.lastActivity = performance.now();
      if (limit > 0 && this.bytesIn > limit) {
        this.res.shouldKeepAlive = false;
        this.fail(tooLarge('request', limit));
        return;
      }
      if (!ex.send(chunk)) req.pause();
    });
    ex.on('drain', () => req.resume());
    req.once('end', () => {
      this.copy?.end();
      ex.end();
    });
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
    if (this.failed || this.resend(err)) return;
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
    this.owner.finished();
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
        resends: this.resends || undefined,
        method: req.method,
        path: redactUrl(ctx.url),
        status: res.statusCode,
        bytesIn: this.bytesIn,
        bytesOut: this.ex?.bytesIn ?? 0,
        durationMs: Math.round(ms * 10) / 10,
        client: admitted.forwarded.client,
        code: ctx.code,
        reason: ctx.reason,
        completed: res.writableFinished,
      },
      'request',
    );
  }
}
