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
 * and response trailers are dropped (docs/wire-protocol.md). One admitted
 * request, with its re-sends, is a PublicRequest (relay/public-request.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CtbridgeError } from '../src/errors.js';
import { IdleWaiters } from '../src/idle-waiters.js';
import { redactUrl } from '../src/redact.js';
import { nextRequestId } from '../src/request-id.js';
import type { Admitted } from './admission.js';
import { answerError, asCtbridgeError, PublicRequest, type PublicRequestsOptions } from './public-request.js';
import type { ExchangeContext } from './tunnel-kind.js';

export type { PublicRequestsOptions };

export class PublicRequests {
  /** Requests being answered, for graceful shutdown. */
  inFlight = 0;
  private readonly idleWaiters = new IdleWaiters();

  constructor(private readonly opts: PublicRequestsOptions) {}

  /** A PublicRequest began. */
  started(): void {
    this.inFlight++;
  }

  /** A PublicRequest ended (its response closed). */
  finished(): void {
    if (--this.inFlight === 0) this.idleWaiters.wake();
  }

  /** Resolves true once no request is in flight (at once if none is), false after `ms`. */
  whenIdle(ms: number): Promise<boolean> {
    return this.idleWaiters.wait(this.inFlight === 0, ms);
  }

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
    log.info({ requestId, tunnel, method: req.method, path: redactUrl(req.url ?? ''), status: err.status, code: err.code, reason: err.userMessage }, 'request refused');
    // Only names the relay knows become labels: a caller cannot grow the metric set.
    const known = tunnel && err.code !== 'CTB_TUNNEL_UNKNOWN' ? tunnel : '';
    res.once('close', () => metrics?.request(known, res.statusCode, 0, { code: err.code }));
    const ctx: ExchangeContext = { requestId, tunnel: tunnel ?? '', method: req.method ?? 'GET', url: req.url ?? '' };
    // The inspector keeps refusals too ("no agent connected" is the first thing to look for), for known tunnels only.
    if (known) this.opts.inspect?.watch(req, res, ctx, () => ({ response: undefined, agentId: undefined, node: undefined, bytesIn: 0, bytesOut: 0 }), true);
    // The body was not read: do not keep a connection whose next bytes are an unread upload.
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.shouldKeepAlive = false;
    answerError(res, err, ctx, kindOf(tunnel ?? ''));
  }
}
