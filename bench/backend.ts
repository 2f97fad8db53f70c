/**
 * The benchmark's intranet service, in its own process so the load generator
 * and the service do not share an event loop. Prints its port on stdout.
 *
 *   GET  /small            ~300-byte XML answer (the request-rate test)
 *   GET  /download?bytes=N N bytes of octet-stream, written with backpressure
 *   POST /upload           reads and discards the body, answers its byte count
 *   GET  /hold             sends the headers, holds the body open (an open exchange)
 *   GET  /release          ends every held body; answers how many it ended
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const SMALL = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="http://clienttracker.cioc.ca/schema/"><resourceInfo><id>ZZZ00123</id>' +
    '<name>Food Bank, North York Branch</name><url>https://intranet.example/record/ZZZ00123</url></resourceInfo></response>\n',
);
const BLOCK = Buffer.alloc(64 * 1024, 'x');
const held = new Set<http.ServerResponse>();

function download(url: string, res: http.ServerResponse): void {
  const size = Number(new URL(url, 'http://x').searchParams.get('bytes'));
  if (!Number.isSafeInteger(size) || size < 0) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('bytes: expected a non-negative integer\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  let sent = 0;
  const pump = (): void => {
    while (sent < size) {
      const n = Math.min(BLOCK.length, size - sent);
      sent += n;
      if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

function upload(req: http.IncomingMessage, res: http.ServerResponse): void {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    const body = `${bytes}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
  });
}

function hold(res: http.ServerResponse): void {
  // Headers now, body later: the exchange stays in flight until /release (or the client goes away).
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.flushHeaders();
  held.add(res);
  res.once('close', () => held.delete(res));
}

function release(res: http.ServerResponse): void {
  const count = held.size;
  for (const r of held) r.end('released\n');
  held.clear();
  const body = `${count}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/download')) return download(url, res);
  if (url.startsWith('/upload') && req.method === 'POST') return upload(req, res);
  if (url.startsWith('/hold')) return hold(res);
  if (url.startsWith('/release')) return release(res);
  res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'content-length': SMALL.length });
  res.end(SMALL);
});
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
