/**
 * The agent's side of a tunnel: each exchange the relay opens is one
 * request to the target the agent's own config names for the tunnel (the
 * relay only ever names a tunnel). The request head is checked (tunnel,
 * allowPaths, header size), given the target's Host, base path and
 * credentials, and sent with undici from the tunnel's pool; the response
 * head and body go back on the exchange. No HTTP bytes are parsed here but
 * the target's answer, by undici.
 *
 *   relay ──exchange──▶ TunnelRequests ──undici Pool──▶ target
 *
 * Backpressure both ways: undici pauses reading the target while the
 * exchange has no credit (onData returns false) and resumes on 'drain';
 * the request body is pulled from the exchange as undici writes it.
 */
import { STATUS_CODES } from 'node:http';
import { basename } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AgentConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import { endToEnd, getHeader, withoutHeaders } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import { pipeSocket } from '../src/mux/socket-pipe.js';
import type { RequestHead } from '../src/mux/heads.js';
import { RELAY_ADDED_HEADERS } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import { checkPath } from './allow-paths.js';
import { logRequest, newEntry, type RequestEntry } from './request-log.js';
import { requestBody } from './request-body.js';
import { requestTimeoutError, targetError } from './target-errors.js';
import { createTunnelTargets, type TunnelTarget } from './target-pool.js';

/** Fields undici sets itself (or refuses), besides the hop-by-hop ones. */
const UNDICI_OWNED = ['expect', 'host'];

export class TunnelRequests {
  private readonly targets: Map<string, TunnelTarget>;
  private readonly file: string;
  private active = 0;
  private readonly idleWaiters = new Set<() => void>();
  private accepting = true;

  constructor(private readonly config: AgentConfig, private readonly log: Logger) {
    this.file = basename(config.file);
    this.targets = createTunnelTargets(config);
  }

  /** Exchanges being served (WebSocket connections included). */
  get inFlight(): number {
    return this.active;
  }

  /** An exchange the relay opened. */
  serve(ex: Exchange): void {
    const { head } = ex;
    const target = this.targets.get(head.tunnel);
    if (head.kind === 'egress' || !target) {
      const err = head.kind === 'egress'
        ? new CtbridgeError('CTB_PROTOCOL', 'the agent takes no egress exchanges from the relay')
        : new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', `tunnel '${head.tunnel}' is not in this agent's config (${this.file}); the agent only connects to targets it lists`);
      this.log.warn({ tunnel: head.tunnel, kind: head.kind, code: err.code, requestId: head.requestId }, 'refused an exchange for a tunnel not in the config');
      ex.reset(err);
      return;
    }
    if (!this.accepting) {
      ex.reset(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is shutting down and takes no new requests'));
      return;
    }
    const entry = newEntry(head);
    this.active++;
    ex.once('close', () => {
      this.active--;
      if (this.active === 0) for (const wake of [...this.idleWaiters]) wake();
    });
    const refusal = this.refusal(head, target);
    if (refusal) {
      entry.status = refusal.status;
      entry.code = refusal.code;
      ex.reset(refusal);
      logRequest(this.log, entry, false);
      return;
    }
    new TargetCall(ex, target, entry, this.file, this.log).start(this.targetHeaders(head, target));
  }

  /** Stop taking new exchanges (the relay has confirmed it sends no more). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves true once no exchange is in flight, false after `ms`. */
  waitIdle(ms: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(onIdle);
        resolve(idle);
      };
      const onIdle = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.idleWaiters.add(onIdle);
    });
  }

  /** Cuts whatever is left and closes the target connection pools. */
  async destroy(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => t.pool.destroy(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent shut down'))));
  }

  /** Why the agent will not send this request to the target, or undefined. */
  private refusal(head: RequestHead, target: TunnelTarget): CtbridgeError | undefined {
    const verdict = checkPath(head.target, target.config.allowPaths);
    if (verdict === 'bad-encoding') return new CtbridgeError('CTB_BAD_REQUEST', 'the request path is not valid percent-encoded UTF-8');
    if (verdict === 'denied') {
      const path = redactUrl(head.target.replace(/[?#].*$/s, ''));
      return new CtbridgeError('CTB_PATH_NOT_ALLOWED', `path ${path} is not in the allowPaths of tunnel '${target.name}'`);
    }
    // The caller's fields, without the few the relay adds, within the agent's own limit.
    let size = 0;
    for (let i = 0; i < head.headers.length; i += 2) {
      if (!RELAY_ADDED_HEADERS.has(head.headers[i].toLowerCase())) size += head.headers[i].length + head.headers[i + 1].length + 4;
    }
    if (size > this.config.limits.maxHeaderSize) {
      return new CtbridgeError('CTB_BAD_REQUEST', `the request headers are larger than the agent's limit of ${this.config.limits.maxHeaderSize} bytes`, {
        hint: `raise limits.maxHeaderSize in ${this.file}`,
      });
    }
    return undefined;
  }

  /** The fields the target gets: the relay's end-to-end ones, the tunnel's Host, and the target URL's credentials. */
  private targetHeaders(head: RequestHead, target: TunnelTarget): string[] {
    const headers = endToEnd(head.headers, { alsoDrop: UNDICI_OWNED });
    const policy = target.config.hostHeader;
    const host = policy.mode === 'target' ? target.host : policy.mode === 'literal' ? policy.host : getHeader(head.headers, 'host');
    if (host) headers.push('Host', host);
    if (target.authorization && getHeader(headers, 'authorization') === undefined) headers.push('Authorization', target.authorization);
    return headers;
  }
}

/**
 * One request to a target: undici's dispatch handler. It answers the
 * exchange with the target's response, or resets it with the failure as
 * data; the relay cancelling (caller gone, relay timeout) aborts it.
 */
class TargetCall implements Dispatcher.DispatchHandler {
  private abort: ((err: Error) => void) | undefined;
  private cancelled: CtbridgeError | undefined;
  private resume: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly ex: Exchange,
    private readonly target: TunnelTarget,
    private readonly entry: RequestEntry,
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  start(headers: string[]): void {
    const { ex, target } = this;
    const upgrade = ex.head.kind === 'upgrade';
    ex.once('reset', (err) => this.cancel(err));
    ex.on('drain', () => this.resume?.());
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

  onConnect(abort: (err?: Error) => void): void {
    if (this.cancelled) abort(this.cancelled);
    else this.abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // Interim 1xx answers (103 Early Hints, ...) are not passed on; the final one follows.
    if (status < 200 || this.done) return true;
    this.resume = resume;
    this.entry.status = status;
    const headers = endToEnd(latin1Pairs(rawHeaders));
    this.ex.respond(statusText && statusText !== STATUS_CODES[status] ? { status, statusText, headers } : { status, headers });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.ex.send(chunk);
  }

  onComplete(): void {
    // Trailers are dropped (docs/wire-protocol.md).
    this.ex.end();
    this.finish(false);
  }

  onUpgrade(status: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.entry.status = status;
    clearTimeout(this.timer);
    const headers = endToEnd(latin1Pairs(rawHeaders), { keepUpgrade: true });
    this.ex.respond({ status, headers });
    pipeSocket(this.ex, socket, () => new CtbridgeError('CTB_TARGET_UNREACHABLE', `the target closed the WebSocket connection for tunnel '${this.target.name}'`));
    this.ex.once('close', () => this.finish(false));
  }

  onError(err: Error): void {
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
    this.ex.reset(err);
    this.finish(true);
  }

  /** The relay gave up on the exchange (caller gone, timeout): stop the target request. */
  private cancel(err: CtbridgeError): void {
    if (this.done) return;
    this.entry.code ??= err.code;
    this.stop(err);
    // Still queued for a connection: undici aborts it when it would start.
    if (!this.abort) this.finish(true);
  }

  private stop(err: CtbridgeError): void {
    if (this.cancelled) return;
    this.cancelled = err;
    this.abort?.(err);
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

/** undici's raw header buffers as strings, byte for byte (latin1). */
function latin1Pairs(raw: Buffer[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i].toString('latin1');
  return out;
}
