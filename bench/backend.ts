/**
 * The benchmark's intranet service, in its own process so the load generator
 * and the service do not share an event loop. Prints its port on stdout.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const SMALL = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="http://clienttracker.cioc.ca/schema/"><resourceInfo><id>ZZZ00123</id>' +
    '<name>Food Bank, North York Branch</name><url>https://intranet.example/record/ZZZ00123</url></resourceInfo></response>\n',
);
const BLOCK = Buffer.alloc(64 * 1024, 'x');

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/download')) {
    const size = Number(new URL(url, 'http://x').searchParams.get('bytes'));
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
    return;
  }
  if (url.startsWith('/hold')) {
    // An idle stream: answer only when the client goes away.
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'content-length': SMALL.length });
  res.end(SMALL);
});
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
