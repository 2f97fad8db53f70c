/**
 * One request to a target: the undici dispatch handler that answers the
 * relay's exchange with the target's response (head, then body under the
 * exchange's credit: paused while send() returns false), or resets
 * it with the failure as data. The relay cancelling (caller gone, relay
 * timeout) aborts it; so does the tunnel's request timeout.
 */
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CtbridgeError } from '../src/errors.js';
import { endToEnd, getHeader, withoutHeaders } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import { pipeSocket } from '../src/mux/socket-pipe.js';
import { logRequest, type RequestEntry } from './request-log.js';
import { requestBody } from './request-body.js';
import { requestTimeoutError, targetError } from './target-errors.js';
import type { TunnelTarget } from './target-pool.js';

/**
 * One request to a target: undici's dispatch handler, on its controller API
 * (onRequestStart ... onResponseEnd; the callbacks undici 7 deprecates are
 * not used). It answers the exchange with the target's response, or resets
 * it with the failure as data; the relay cancelling (caller gone, relay
 * timeout) aborts it through the controller. Backpressure: when the
 * exchange has no credit, `controller.pause()`; its 'drain' resumes.
 */
export class TargetCall implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private cancelled: CtbridgeError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly ex: Exchange,
    private readonly target: TunnelTarget,
    private readonly entry: RequestEntry,
    private readonly file: string,
    private readonly log: Logger,
    private readonly onFailure: (err: CtbridgeError) => void,
  ) {}

  start(headers: string[]): void {
    const { ex, target } = this;
    const upgrade = ex.head.kind === 'upgrade';
    ex.once('reset', (err) => this.cancel(err));
    ex.on('drain', () => this.controller?.resume());
    this.timer = setTimeout(() => {
      const err = requestTimeoutError(target, this.file);
      this.fail(err);
      this.stop(err);
    }, target.config.timeouts.request);
    target.pool.dispatch({
      path: target.basePath + ex.head.target,
      method: ex.head.method as Dispatcher.HttpMethod,
      headers: upgrade ? withoutHeaders(headers, new Set(['connection', 'upgrade'])) : headers,
      // An upgrade has no body: what follows the 101 is piped (src/mux/socket-pipe.ts).
      // undici sends async iterables (its types do not say so).
      body: upgrade || ex.peerEnded ? null : (requestBody(ex) as unknown as Dispatcher.DispatchOptions['body']),
      upgrade: upgrade ? (getHeader(ex.head.headers, 'upgrade') ?? 'websocket') : null,
    }, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(this.cancelled);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, statusText?: string): void {
    // Interim 1xx answers (103 Early Hints, ...) are not passed on; the final one follows.
    if (status < 200 || this.done) return;
    this.entry.status = status;
    this.entry.headersAt = performance.now();
    const fields = endToEnd(headerPairs(controller, headers));
    this.ex.respond(statusText && statusText !== STATUS_CODES[status] ? { status, statusText, headers: fields } : { status, headers: fields });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.ex.send(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    // Trailers are dropped (docs/wire-protocol.md).
    this.ex.end();
    this.finish(false);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.entry.status = status;
    this.entry.headersAt = performance.now();
    clearTimeout(this.timer);
    this.ex.respond({ status, headers: endToEnd(headerPairs(controller, headers), { keepUpgrade: true }) });
    pipeSocket(this.ex, socket, () => new CtbridgeError('CTB_TARGET_UNREACHABLE', `the target closed the WebSocket connection for tunnel '${this.target.name}'`));
    this.ex.once('close', () => this.finish(false));
  }

  /** undici may call this without a controller (a dispatch refused before it started). */
  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.cancelled) {
      this.finish(true);
      return;
    }
    const e = targetError(err, { target: this.target, file: this.file, responseStarted: this.ex.response !== undefined });
    this.fail(e);
  }

  /** The target failed: the relay gets the error as data, and the log says what happened. */
  private fail(err: CtbridgeError): void {
    if (this.done) return;
    this.entry.code = err.code;
    if (!this.ex.response) this.entry.status = err.status;
    this.log.warn({ requestId: this.entry.requestId, tunnel: this.target.name, code: err.code, err }, 'target request failed');
    this.onFailure(err);
    this.ex.reset(err);
    this.finish(true);
  }

  /** The relay gave up on the exchange (caller gone, timeout): stop the target request. */
  private cancel(err: CtbridgeError): void {
    if (this.done) return;
    this.entry.code ??= err.code;
    this.stop(err);
    // Still queued for a connection: onRequestStart aborts it when it would start.
    if (!this.controller) this.finish(true);
  }

  private stop(err: CtbridgeError): void {
    if (this.cancelled) return;
    this.cancelled = err;
    this.controller?.abort(err);
  }

  private finish(aborted: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.entry.bytesIn = this.ex.bytesIn;
    this.entry.bytesOut = this.ex.bytesOut;
    logRequest(this.log, this.entry, aborted);
  }
}

/**
 * The target's header fields as name/value pairs, as they came (case, order
 * and repeats kept): from the raw buffers undici leaves on the controller,
 * or, failing those, from the parsed (lower-cased) headers object.
 */
function headerPairs(controller: Dispatcher.DispatchController, headers: IncomingHttpHeaders): string[] {
  const raw = controller.rawHeaders;
  if (Array.isArray(raw)) {
    const out = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      out[i] = typeof v === 'string' ? v : v.toString('latin1');
    }
    return out;
  }
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else if (value !== undefined) out.push(name, value);
  }
  return out;
}
