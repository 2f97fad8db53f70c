/**
 * The agent's side of a tunnel: an http.Server that never listens. Every mux
 * stream the relay opens for a tunnel is handed to it as a connection; each
 * HTTP request on it is checked against the tunnel's allowPaths and proxied
 * (http-proxy-3, one instance for all tunnels) to the target the agent's own
 * config names for that tunnel. The relay only ever names a tunnel.
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { basename } from 'node:path';
import type { Duplex } from 'node:stream';
import { createProxyServer, type ProxyServer, type ServerOptions } from 'http-proxy-3';
import type { AgentConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import { flushHeadersIfIdle } from '../src/http/flush-headers.js';
import { stripHopByHop } from '../src/http/hop-by-hop.js';
import { sendError } from '../src/http/error-response.js';
import type { Logger } from '../src/log.js';
import type { TunnelStream } from '../src/mux/stream.js';
import { logExchange, newExchange, pathRefusal, type Exchange } from './exchange.js';
import { writeRawError } from './raw-response.js';
import { requestTimeoutError, targetError } from './target-errors.js';
import { createTunnelTargets, prepareRequest, type TunnelTarget } from './target-tunnels.js';

export class TargetProxy {
  private readonly tunnels: Map<string, TunnelTarget>;
  private readonly server: http.Server;
  private readonly proxy: ProxyServer;
  private readonly file: string;
  private readonly exchanges = new WeakMap<IncomingMessage, Exchange>();
  /** Open streams → requests in flight on each. */
  private readonly streams = new Map<TunnelStream, number>();
  private active = 0;
  private idleWaiters = new Set<() => void>();
  private shuttingDown = false;

  constructor(private readonly config: AgentConfig, private readonly log: Logger) {
    this.file = basename(config.file);
    this.tunnels = createTunnelTargets(config);
    this.server = http.createServer({ maxHeaderSize: config.limits.maxHeaderSize, requestTimeout: 0, headersTimeout: 60_000 });
    this.server.keepAliveTimeout = 75_000;
    this.server.timeout = 0;
    this.server.on('request', this.onRequest);
    this.server.on('upgrade', this.onUpgrade);
    this.server.on('clientError', this.onClientError);
    this.proxy = createProxyServer({});
    this.proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req));
    this.proxy.on('proxyReqWs', (proxyReq, req) => this.onProxyReq(proxyReq, req));
    this.proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req, res));
    // Errors of the relay-side connection of an upgrade; its own 'close' does the cleanup.
    this.proxy.on('error', (err) => this.log.debug({ err }, 'tunnel stream error'));
  }

  /** Requests in flight (WebSocket connections excluded). */
  get inFlight(): number {
    return this.active;
  }

  /** A stream the relay opened: serve it if it names one of our tunnels. */
  handleStream(stream: TunnelStream): void {
    stream.on('error', (err) => this.log.debug({ streamId: stream.id, err }, 'tunnel stream error'));
    const { kind, tunnel } = stream.meta;
    if (this.shuttingDown) {
      stream.destroy(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is shutting down and takes no new requests'));
      return;
    }
    if (kind !== 'http') {
      stream.destroy(new CtbridgeError('CTB_PROTOCOL', `the agent does not serve streams of kind ${JSON.stringify(kind)?.slice(0, 40)}`));
      return;
    }
    if (typeof tunnel !== 'string' || !this.tunnels.has(tunnel)) {
      const name = typeof tunnel === 'string' ? tunnel.slice(0, 64) : JSON.stringify(tunnel)?.slice(0, 64);
      const err = new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED',
        `tunnel '${name}' is not in this agent's config (${this.file}); the agent only connects to targets it lists`);
      this.log.warn({ tunnel: name, code: err.code, streamId: stream.id }, 'refused a stream for a tunnel not in the config');
      stream.destroy(err);
      return;
    }
    this.streams.set(stream, 0);
    stream.once('close', () => this.streams.delete(stream));
    this.server.emit('connection', stream);
  }

  /** Stop taking work: idle streams end, busy ones end after their response. */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const [stream, n] of this.streams) if (n === 0) stream.end();
  }

  /** Resolves true once no request is in flight, false after `ms`. */
  waitIdle(ms: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (idle: boolean) => {
        clearTimeout(timer);
        this.idleWaiters.delete(onIdle);
        resolve(idle);
      };
      const onIdle = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.idleWaiters.add(onIdle);
    });
  }

  /** Cuts whatever is left and closes the target connection pools. */
  destroy(): void {
    for (const stream of [...this.streams.keys()]) stream.destroy(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent shut down'));
    for (const target of this.tunnels.values()) target.agent.destroy();
  }

  // ---- requests ----

  private exchange(req: IncomingMessage): Exchange | undefined {
    const target = this.tunnels.get((req.socket as unknown as TunnelStream).meta?.tunnel as string);
    if (!target) return undefined;
    const ex = newExchange(req, target);
    this.exchanges.set(req, ex);
    return ex;
  }

  private proxyOptions(target: TunnelTarget): ServerOptions {
    return {
      target: target.targetUrl, prependPath: false, toProxy: true, changeOrigin: false, xfwd: false,
      agent: target.agent, secure: target.config.tlsVerify, auth: target.auth,
    };
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const stream = req.socket as unknown as TunnelStream;
    const ex = this.exchange(req);
    if (!ex) {
      res.destroy();
      return;
    }
    const busy = this.streams.get(stream);
    if (busy !== undefined) this.streams.set(stream, busy + 1);
    this.active++;
    res.once('close', () => this.onResponseClose(stream, res, ex));
    if (this.shuttingDown) res.shouldKeepAlive = false;

    const refusal = pathRefusal(ex);
    if (refusal) {
      this.answer(req, res, ex, refusal);
      return;
    }
    prepareRequest(req, ex.target);
    ex.timer = setTimeout(() => this.fail(req, res, ex, requestTimeoutError(ex.target, this.file)), ex.target.config.timeouts.request);
    ex.proxied = true;
    this.proxy.web(req, res, { ...this.proxyOptions(ex.target), proxyTimeout: ex.target.config.timeouts.idle }, (err) => {
      if (ex.answered || res.writableFinished) return;
      this.fail(req, res, ex, targetError(err, { target: ex.target, file: this.file, idleTimedOut: ex.idleTimedOut, responseStarted: ex.responseStarted }));
    });
    // proxy.web piped req synchronously, so this listener misses nothing and steals nothing.
    req.on('data', (chunk: Buffer) => {
      ex.bytesIn += chunk.length;
    });
  };

  private onProxyReq(proxyReq: ClientRequest, req: IncomingMessage): void {
    const ex = this.exchanges.get(req);
    if (!ex) return;
    ex.proxyReq = proxyReq;
    proxyReq.once('timeout', () => {
      ex.idleTimedOut = true;
    });
    proxyReq.once('upgrade', (_res: IncomingMessage, proxySocket: Duplex) => {
      ex.upgradeStatus = 101;
      // The target connection is gone: its pipe paused the tunnel stream when it unpiped; drain it.
      proxySocket.once('close', () => setImmediate(() => ex.upgradeStream && drainToEnd(ex.upgradeStream)));
    });
    proxyReq.once('response', (r: IncomingMessage) => {
      ex.upgradeStatus ??= r.statusCode;
    });
  }

  private onProxyRes(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void {
    const ex = this.exchanges.get(req);
    if (!ex) return;
    ex.responseStarted = true;
    // The target's connection handling is between it and the agent; a
    // `Connection: close` from it must not close the pooled tunnel stream.
    stripHopByHop(proxyRes.headers);
    if (this.shuttingDown) proxyRes.headers.connection = 'close';
    flushHeadersIfIdle(res);
    proxyRes.on('data', (chunk: Buffer) => {
      ex.bytesOut += chunk.length;
    });
    proxyRes.once('close', () => {
      // The target vanished mid-answer: pipe() would leave the response hanging.
      if (!proxyRes.complete && !ex.answered && !res.writableFinished) {
        const cause = Object.assign(new Error('target connection closed mid-response'), { code: 'ECONNRESET' });
        this.fail(req, res, ex, targetError(cause, { target: ex.target, file: this.file, idleTimedOut: ex.idleTimedOut, responseStarted: true }));
      }
    });
  }

  /** A failure on the way to the target: log it and answer (or cut) the request. */
  private fail(req: IncomingMessage, res: ServerResponse, ex: Exchange, err: CtbridgeError): void {
    if (ex.answered || res.writableFinished) return;
    if (req.socket.destroyed) return; // the relay went away first; nobody to answer
    this.log.warn({ requestId: ex.requestId, tunnel: ex.target.name, code: err.code, err }, 'target request failed');
    this.answer(req, res, ex, err);
  }

  private answer(req: IncomingMessage, res: ServerResponse, ex: Exchange, err: CtbridgeError): void {
    ex.answered = true;
    ex.code = err.code;
    clearTimeout(ex.timer);
    if (res.headersSent || res.destroyed) {
      // Too late for an error response: cut the stream; the RESET carries the code.
      res.destroy(err);
    } else {
      if (ex.proxied && !req.complete) {
        // The body was going to the target; drop the rest and close after answering.
        res.shouldKeepAlive = false;
        req.unpipe();
        req.resume();
      }
      sendError(res, err, { requestId: ex.requestId });
      ex.bytesOut = Number(res.getHeader('content-length')) || 0;
    }
    ex.proxyReq?.destroy();
  }

  private onResponseClose(stream: TunnelStream, res: ServerResponse, ex: Exchange): void {
    clearTimeout(ex.timer);
    const aborted = !res.writableFinished;
    logExchange(this.log, ex, res.headersSent ? res.statusCode : 0, aborted);
    const busy = this.streams.get(stream);
    if (busy !== undefined) {
      this.streams.set(stream, busy - 1);
      if (this.shuttingDown && busy === 1 && !stream.destroyed && !stream.writableEnded) stream.end();
    }
    this.active--;
    if (this.active === 0) for (const wake of [...this.idleWaiters]) wake();
  }

  // ---- WebSocket upgrades ----

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const stream = socket as TunnelStream;
    const ex = this.exchange(req);
    if (!ex) {
      stream.destroy();
      return;
    }
    this.streams.delete(stream); // no longer an HTTP connection: shutdown must not end it as idle
    // When our side is done, read on to the relay's END so the stream closes cleanly (no RESET).
    stream.once('finish', () => drainToEnd(stream));
    ex.upgradeStream = stream;
    stream.once('close', () => {
      clearTimeout(ex.timer);
      logExchange(this.log, ex, ex.upgradeStatus ?? 0, ex.upgradeStatus === undefined && !ex.answered, true);
    });
    const refusal = pathRefusal(ex);
    if (refusal) {
      ex.answered = true;
      ex.code = refusal.code;
      ex.upgradeStatus = refusal.status;
      writeRawError(stream, refusal, ex.requestId);
      return;
    }
    prepareRequest(req, ex.target);
    ex.proxied = true;
    this.proxy.ws(req, stream, head, this.proxyOptions(ex.target), (err) => {
      if (ex.upgradeStatus !== undefined || ex.answered || stream.destroyed) return;
      const e = targetError(err, { target: ex.target, file: this.file, idleTimedOut: false, responseStarted: false });
      this.log.warn({ requestId: ex.requestId, tunnel: ex.target.name, code: e.code, err: e }, 'target request failed');
      ex.answered = true;
      ex.code = e.code;
      ex.upgradeStatus = e.status;
      writeRawError(stream, e, ex.requestId);
    });
  };

  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const busy = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
    if (socket.destroyed || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const e = err.code === 'HPE_HEADER_OVERFLOW'
      ? new CtbridgeError('CTB_BAD_REQUEST', `the request headers are larger than the agent's limit of ${this.config.limits.maxHeaderSize} bytes`, {
        hint: `raise limits.maxHeaderSize in ${this.file}`,
      })
      : new CtbridgeError('CTB_BAD_REQUEST', `the agent could not parse the HTTP request from the relay (${err.code ?? err.message})`);
    this.log.warn({ code: e.code, err: e }, 'bad request from relay');
    writeRawError(socket, e);
  };
}

/** Lets a stream nobody reads any more consume what is left up to the peer's END. */
function drainToEnd(stream: Duplex): void {
  if (!stream.destroyed && !stream.readableEnded) stream.resume();
}
