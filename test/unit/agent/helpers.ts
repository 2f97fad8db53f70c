/**
 * Test doubles for the agent: a fake relay (ws server + relay-role
 * MuxSession), a log capture, a target service, and requests as the relay
 * sends them (one exchange each).
 */
import { EventEmitter, once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseAgentConfig, type AgentConfig } from '../../../src/config/index.js';
import { createLogger, type Logger } from '../../../src/log.js';
import { MuxSession } from '../../../src/mux/session.js';
import { PROTOCOL_VERSION, type DrainedMessage, type HelloMessage, type ReadyMessage } from '../../../src/protocol.js';
import type { ExchangeKind } from '../../../src/mux/heads.js';
import { signAgentToken } from '../../../src/token.js';
import { exchange, type Pending } from '../../helpers/exchange.js';
export type { Outcome, Pending } from '../../helpers/exchange.js';
export { freePort } from '../../../cli/demo/free-port.js';
import { freePort } from '../../../cli/demo/free-port.js';

export type LogLine = Record<string, unknown> & { msg: string; level: number };

export class LogCapture extends EventEmitter {
  readonly lines: LogLine[] = [];
  readonly text: string[] = [];
  readonly logger: Logger;

  constructor() {
    super();
    const destination = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          this.text.push(line);
          const parsed = JSON.parse(line) as LogLine;
          this.lines.push(parsed);
          this.emit('line', parsed);
        }
        cb();
      },
    });
    this.logger = createLogger({ level: 'debug', name: 'agent', destination });
  }

  find(msg: string, pred: (l: LogLine) => boolean = () => true): LogLine | undefined {
    return this.lines.find((l) => l.msg === msg && pred(l));
  }

  /** The first line (already logged or future) with this msg matching pred. */
  waitFor(msg: string, pred: (l: LogLine) => boolean = () => true): Promise<LogLine> {
    const found = this.find(msg, pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const onLine = (l: LogLine) => {
        if (l.msg === msg && pred(l)) {
          this.off('line', onLine);
          resolve(l);
        }
      };
      this.on('line', onLine);
    });
  }

  get all(): string {
    return this.text.join('\n');
  }
}

export interface RelayConn {
  ws: WebSocket;
  headers: IncomingHttpHeaders;
  session: MuxSession;
  hello: Promise<HelloMessage>;
  controls: Record<string, unknown>[];
  closed: Promise<[number, string]>;
  ready(publicUrls?: Record<string, string>): void;
  /** Resolves when the agent sends `drain`. */
  drain: Promise<Record<string, unknown>>;
  /**
   * Called when the agent sends `drain`, before the relay answers `drained`
   * (as the real relay does); set `answerDrain` false to answer by hand.
   */
  beforeDrained?: () => void;
  answerDrain: boolean;
  /** Sends `drained`. */
  drained(): void;
}

export class FakeRelay {
  readonly wss: WebSocketServer;
  readonly conns: RelayConn[] = [];
  private readonly events = new EventEmitter();

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws, req) => {
      const session = new MuxSession(ws, { role: 'relay', window: 256 * 1024, maxIncoming: 100, heartbeat: { interval: 0, timeout: 0 } });
      const controls: Record<string, unknown>[] = [];
      const index = this.conns.length;
      const closed = new Promise<[number, string]>((resolve) => session.on('close', (code, reason) => resolve([code, reason])));
      let onHello!: (m: HelloMessage) => void;
      let onDrain!: (m: Record<string, unknown>) => void;
      const conn: RelayConn = {
        ws, headers: req.headers, session, controls, closed,
        hello: new Promise<HelloMessage>((resolve) => (onHello = resolve)),
        drain: new Promise((resolve) => (onDrain = resolve)),
        answerDrain: true,
        ready: (publicUrls = {}) => {
          const ready: ReadyMessage = { type: 'ready', version: PROTOCOL_VERSION, connectionId: `c${index}`, publicUrls, window: 256 * 1024 };
          session.sendControl(ready);
        },
        drained: () => {
          const drained: DrainedMessage = { type: 'drained' };
          session.sendControl(drained);
        },
      };
      session.on('control', (m) => {
        controls.push(m);
        if (m.type === 'hello') {
          session.setPeerWindow(m.window); // as the relay does
          onHello(m as unknown as HelloMessage);
        }
        if (m.type === 'drain') {
          onDrain(m);
          conn.beforeDrained?.();
          if (conn.answerDrain) conn.drained();
        }
      });
      this.conns.push(conn);
      this.events.emit('conn', conn);
    });
  }

  /** With `tls`, a wss:// relay on an https server. */
  static async start(options: { tls?: { cert: string; key: string } } = {}): Promise<FakeRelay> {
    if (options.tls) {
      const server = https.createServer(options.tls);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const relay = new FakeRelay(new WebSocketServer({ server }));
      relay.httpsServer = server;
      return relay;
    }
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    return new FakeRelay(wss);
  }

  private httpsServer: https.Server | undefined;

  get url(): string {
    if (this.httpsServer) return `wss://localhost:${(this.httpsServer.address() as AddressInfo).port}/_ctbridge/agent`;
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/_ctbridge/agent`;
  }

  get port(): number {
    return ((this.httpsServer ?? this.wss).address() as AddressInfo).port;
  }

  /** The n-th connection (0-based), now or when it arrives. */
  connection(n = 0): Promise<RelayConn> {
    if (this.conns[n]) return Promise.resolve(this.conns[n]);
    return new Promise((resolve) => {
      const on = () => {
        if (this.conns[n]) {
          this.events.off('conn', on);
          resolve(this.conns[n]);
        }
      };
      this.events.on('conn', on);
    });
  }

  /** Waits for the n-th connection's hello and answers ready. */
  async accept(n = 0, publicUrls: Record<string, string> = {}): Promise<RelayConn> {
    const conn = await this.connection(n);
    await conn.hello;
    conn.ready(publicUrls);
    return conn;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const server = this.httpsServer;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

export const TEST_SECRET = 'agent-tests-secret-0123456789abcdef';

export async function testToken(tunnels = ['t1', 't2', 't3'], ttlMs = 30 * 24 * 3600_000): Promise<string> {
  return signAgentToken({ agentId: 'test-agent', tunnels, ttlMs, key: { secret: TEST_SECRET } });
}

export async function testConfig(relayUrl: string, tunnels: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<AgentConfig> {
  return parseAgentConfig({
    relay: relayUrl,
    token: await testToken(),
    proxy: 'none',
    tunnels,
    reconnect: { initialDelay: '10ms', maxDelay: '50ms' },
    heartbeat: { interval: '5s', timeout: '15s' },
    timeouts: { connect: '2s', shutdownGrace: '2s' },
    admin: { listen: 'off' },
    ...extra,
  }, 'agent.yaml', {});
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A target service that records requests and answers with `handler` (default: 200 JSON echo). */
export async function startTarget(handler?: (req: IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) return handler(req, res, body);
      const out = JSON.stringify({ url: req.url, host: req.headers.host });
      res.writeHead(200, { 'content-type': 'application/json', 'x-target': 'yes' });
      res.end(out);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, seen, port, url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}


/**
 * One request as the relay sends it: an exchange whose head names the
 * tunnel, then the body and END (`body: 'open'`: the test sends and ends);
 * resolves with the reply head and body, or the reset that ended the
 * exchange.
 */
export function tunnelRequest(
  session: MuxSession,
  tunnel: string,
  options: { kind?: ExchangeKind; method?: string; path?: string; headers?: Record<string, string> | string[]; body?: string | Buffer | 'open'; requestId?: string } = {},
): Pending {
  const headers = Array.isArray(options.headers)
    ? options.headers
    : Object.entries({ host: 'relay.example', ...options.headers }).flat();
  return exchange(session, {
    kind: options.kind ?? 'http',
    tunnel,
    method: options.method ?? 'GET',
    target: options.path ?? '/',
    headers,
    requestId: options.requestId ?? 'req-1',
  }, options.body);
}
