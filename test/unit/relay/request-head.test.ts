/**
 * The request head the relay sends the agent, from a real request parsed by
 * Node's HTTP server (raw header pairs, order and case as sent).
 */
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Admitted } from '../../../relay/admission.js';
import { resolveForwarded } from '../../../relay/forwarded.js';
import { requestHead } from '../../../relay/request-head.js';
import { routeRequest } from '../../../relay/routing.js';
import { CidrList } from '../../../src/config/index.js';
import { checkRequestHead, type ExchangeKind, type RequestHead } from '../../../src/mux/heads.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * Sends `raw` (a request head, and a body if any) to a relay-like server
 * and returns the head requestHead() builds from what Node parsed.
 */
async function headFor(raw: string, kind: ExchangeKind, trustedProxies: string[] = []): Promise<{ head: RequestHead; rawHeaders: string[] }> {
  const server = http.createServer({ maxHeaderSize: 256 * 1024 });
  // As relay/index.ts does. (`maxHeadersCount` is not a createServer()
  // option: passed there it is ignored, and Node ≥ 22.23.2 / 24.18.1 then
  // refuse a request of more than 1,000 fields with HPE_HEADER_OVERFLOW.)
  server.maxHeadersCount = 0;
  const built = new Promise<{ head: RequestHead; rawHeaders: string[] }>((resolve) => {
    const build = (req: IncomingMessage): void => {
      const route = routeRequest(req.url ?? '/', req.headers.host, undefined)!;
      const admitted = { route, forwarded: resolveForwarded(req, new CidrList(trustedProxies), false) } as Admitted;
      resolve({ head: requestHead(req, admitted, 'req-77', kind), rawHeaders: req.rawHeaders });
    };
    const answer = (req: IncomingMessage, res: http.ServerResponse): void => {
      build(req);
      req.resume();
      res.end('ok');
    };
    server.on('request', answer);
    server.on('checkContinue', answer);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      build(req);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume();
  cleanups.push(async () => {
    socket.destroy();
  });
  socket.write(raw);
  return built;
}

/** Raw header pairs as a request head. */
function lines(pairs: string[]): string {
  let out = '';
  for (let i = 0; i < pairs.length; i += 2) out += `${pairs[i]}: ${pairs[i + 1]}\r\n`;
  return out;
}

const SMALL = Array.from({ length: 1000 }, (_, i) => [`X-H-${i}`, `v${i}`]).flat();

/** Everything a caller could send to confuse the relay about who it is, or to smuggle a hop-by-hop field through. */
const FORGED = [
  'X-Forwarded-For', '6.6.6.6',
  'x-forwarded-proto', 'https',
  'X-Forwarded-Host', 'evil.example',
  'X-FORWARDED-PORT', '1',
  'X-Real-IP', '6.6.6.6',
  'Forwarded', 'for=6.6.6.6;proto=https',
  'X-Ctbridge-Request-Id', 'forged-id',
  'x-forwarded-for', '7.7.7.7',
];

describe('requestHead', () => {
  it('leads with exactly one set of the relay forwarded headers, then every end-to-end caller header in order', async () => {
    const callerPairs = [
      'Host', 'relay.example:8080',
      'Connection', 'keep-alive, X-Forwarded-For, X-Hop',
      'Cookie', 'a=1',
      ...FORGED,
      'X-Hop', 'hop-by-hop by name',
      'Expect', '100-continue',
      'Transfer-Encoding', 'chunked',
      'TE', 'trailers',
      'Keep-Alive', 'timeout=5',
      'Proxy-Authorization', 'Basic cHJveHk6c2VjcmV0',
      'cookie', 'b=2',
      'X-Mixed-Case', 'Value With Spaces',
      ...SMALL,
    ];
    const { head, rawHeaders } = await headFor(`POST /t/t1/p/a%2Fb?q=1&x=%7e HTTP/1.1\r\n${lines(callerPairs)}\r\n5\r\nhello\r\n0\r\n\r\n`, 'http');
    expect(rawHeaders).toEqual(callerPairs); // Node handed over all 1,000+ pairs, as sent
    expect(head).toMatchObject({ kind: 'http', tunnel: 't1', method: 'POST', target: '/p/a%2Fb?q=1&x=%7e', requestId: 'req-77' });
    const dropped = new Set([
      'connection', 'keep-alive', 'te', 'transfer-encoding', 'proxy-authorization', 'x-hop', 'expect',
      'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded', 'x-ctbridge-request-id',
    ]);
    const kept: string[] = [];
    for (let i = 0; i < callerPairs.length; i += 2) if (!dropped.has(callerPairs[i].toLowerCase())) kept.push(callerPairs[i], callerPairs[i + 1]);
    expect(kept.length).toBe(2 * (4 + 1000));
    expect(head.headers).toEqual([
      'X-Forwarded-For', '127.0.0.1',
      'X-Forwarded-Proto', 'http',
      'X-Forwarded-Host', 'relay.example:8080',
      'X-Ctbridge-Request-Id', 'req-77',
      ...kept,
    ]);
    const names = head.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n === 'x-forwarded-for')).toHaveLength(1);
    expect(names.filter((n) => n === 'x-ctbridge-request-id')).toHaveLength(1);
    // The agent's checks take it as it is.
    expect(checkRequestHead(JSON.parse(JSON.stringify(head)))).toEqual({ ok: true, value: head });
  });

  it('names the trusted client, not the chain, behind a trusted proxy', async () => {
    const { head } = await headFor(
      `GET /t/t1/ HTTP/1.1\r\nHost: lb.internal\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nX-Real-IP: 6.6.6.6\r\n\r\n`,
      'http',
      ['127.0.0.0/8'],
    );
    expect(head.headers).toEqual([
      'X-Forwarded-For', '203.0.113.9',
      'X-Forwarded-Proto', 'https',
      'X-Forwarded-Host', 'public.example',
      'X-Ctbridge-Request-Id', 'req-77',
      'Host', 'lb.internal',
    ]);
  });

  it('an upgrade keeps Upgrade and sends Connection: upgrade alone, after the relay headers', async () => {
    const { head } = await headFor(
      `GET /t/t1/sock?x=1 HTTP/1.1\r\nHost: relay.example\r\nConnection: keep-alive, Upgrade, X-Forwarded-For\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 5\r\n\r\n`,
      'upgrade',
    );
    expect(head).toMatchObject({ kind: 'upgrade', method: 'GET', target: '/sock?x=1' });
    expect(head.headers).toEqual([
      'X-Forwarded-For', '127.0.0.1',
      'X-Forwarded-Proto', 'http',
      'X-Forwarded-Host', 'relay.example',
      'X-Ctbridge-Request-Id', 'req-77',
      'Host', 'relay.example',
      'Upgrade', 'websocket',
      'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version', '13',
      'Connection', 'upgrade',
    ]);
  });

  it('a plain request drops Upgrade (h2c) with the other hop-by-hop fields', async () => {
    const { head } = await headFor(
      'GET /t/t1/x HTTP/1.1\r\nHost: relay.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nAccept: */*\r\n\r\n',
      'http',
    );
    expect(head.headers.slice(8)).toEqual(['Host', 'relay.example', 'Accept', '*/*']);
    expect(head.headers.slice(0, 8).filter((_, i) => i % 2 === 0)).toEqual(['X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Ctbridge-Request-Id']);
  });
});
