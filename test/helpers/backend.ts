/**
 * An "intranet service" for end-to-end tests: echoes requests, streams
 * deterministic bodies, hashes uploads, holds long-polls, echoes WebSocket
 * messages. Loopback only.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Backend {
  url: string;
  port: number;
  /** Requests seen, most recent last. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  /** Resolves when (or if already) a request whose URL starts with `prefix` has arrived. */
  arrived(prefix: string): Promise<void>;
  /** Ends the body of the `/held?id=<id>` response (its head went out at once). */
  release(id: string): void;
  close(): Promise<void>;
}

/** Deterministic body of `size` bytes: a 64 KiB pseudo-random block, repeated. */
export const BLOCK = (() => {
  const b = Buffer.alloc(64 * 1024);
  let x = 0x12345678;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
})();

export function expectedHash(size: number): string {
  const h = createHash('sha256');
  for (let sent = 0; sent < size; sent += BLOCK.length) h.update(BLOCK.subarray(0, Math.min(BLOCK.length, size - sent)));
  return h.digest('hex');
}

export function writeBlocks(res: http.ServerResponse, size: number, done?: () => void): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < size) {
      const n = Math.min(BLOCK.length, size - sent);
      sent += n;
      if (!res.write(BLOCK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
    done?.();
  };
  pump();
}

export async function startBackend(): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const events = new EventEmitter();
  const held = new Map<string, () => void>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    events.emit('request', req.url ?? '');
    if (url.pathname === '/download') {
      const size = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(url.searchParams.has('chunked') ? {} : { 'content-length': size }) });
      writeBlocks(res, size);
      return;
    }
    if (url.pathname === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const timer = setInterval(() => {
        res.write(`chunk ${i}\n`);
        if (++i === 5) {
          clearInterval(timer);
          res.end('done\n');
        }
      }, 20);
      return;
    }
    if (url.pathname === '/longpoll') {
      const ms = Number(url.searchParams.get('ms'));
      const timer = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ events: [], heldMs: ms }));
      }, ms);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (url.pathname === '/trickle') {
      // A long-held answer that sends a byte every `every` ms for `ms` ms.
      const ms = Number(url.searchParams.get('ms'));
      const every = Number(url.searchParams.get('every'));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      let sent = 0;
      const timer = setInterval(() => {
        sent += every;
        if (sent >= ms) {
          clearInterval(timer);
          res.end(`held ${ms}\n`);
        } else res.write('.');
      }, every);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url.pathname === '/held') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      held.set(url.searchParams.get('id') ?? '', () => res.end('released'));
      return;
    }
    if (url.pathname.startsWith('/status/')) {
      const code = Number(url.pathname.slice(8));
      res.writeHead(code, { 'x-custom-response': 'kept', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'], 'content-type': 'text/plain' });
      res.end(`status ${code}`);
      return;
    }
    // Default: echo with a hash of the body.
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodySha256: hash.digest('hex'), bodyLength: length });
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.send(JSON.stringify({ hello: req.url }));
  });
  // Every field a request carries is read: by default Node keeps 1,000 (up
  // to 24.18 silently; since 22.23.2 / 24.18.1 it answers 431 instead).
  server.maxHeadersCount = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    arrived: (prefix) =>
      seen.some((r) => r.url.startsWith(prefix))
        ? Promise.resolve()
        : new Promise((resolve) => {
            const on = (url: string): void => {
              if (url.startsWith(prefix)) {
                events.off('request', on);
                resolve();
              }
            };
            events.on('request', on);
          }),
    release: (id) => {
      held.get(id)?.();
      held.delete(id);
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
