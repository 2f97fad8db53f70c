/**
 * Public callers that try what the old data path let them do, against a
 * real relay, agent and backend, over raw sockets: request smuggling
 * between relay and agent, stripping the relay's forwarded headers, an
 * `Upgrade: h2c`, and `Expect: 100-continue`.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
let relay: RelayInfo;

beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({ tunnels: { ucws: { maxRequestBody: '64KiB' } } });
  await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } } });
});

afterAll(async () => {
  await stopAll();
  await backend.close();
});

interface RawResponse {
  status: number;
  head: string;
  headers: Record<string, string>;
  body: string;
}

/** Parses the HTTP/1.1 responses in `text` (Content-Length or chunked bodies; the first `bodiless` have none, as HEAD answers). */
function parseResponses(text: string, bodiless = 0): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end);
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n').slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    let body = '';
    let after = rest.slice(end + 4);
    const status = Number(head.slice(9, 12));
    if (out.length < bodiless) {
      // answer to a HEAD: no body whatever the fields say
    } else if (headers['content-length'] !== undefined) {
      body = after.slice(0, Number(headers['content-length']));
      after = after.slice(body.length);
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const nl = after.indexOf('\r\n');
        const size = parseInt(after.slice(0, nl), 16);
        after = after.slice(nl + 2);
        if (size === 0) {
          after = after.slice(2);
          break;
        }
        body += after.slice(0, size);
        after = after.slice(size + 2);
      }
    } else if (status !== 100 && status !== 204 && status !== 304) {
      body = after;
      after = '';
    }
    out.push({ status, head, headers, body });
    rest = after;
  }
  return out;
}

/** Writes `request` on one connection and reads until `count` responses have arrived (or the relay closes). */
function exchange(request: string, count: number, bodiless = 0): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(relay.port, '127.0.0.1');
    let text = '';
    const done = (): void => {
      socket.destroy();
      resolve(parseResponses(text, bodiless));
    };
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
      const got = parseResponses(text, bodiless).filter((r) => r.status !== 100);
      if (got.length >= count && (got.at(-1)?.headers['content-length'] === undefined || got.at(-1)!.body.length === Number(got.at(-1)!.headers['content-length']))) done();
    });
    socket.on('end', done);
    socket.on('error', reject);
    socket.write(request);
  });
}

const echo = (r: RawResponse) => JSON.parse(r.body) as { method: string; url: string; headers: Record<string, string>; bodyLength: number };

describe('request smuggling between relay and agent', () => {
  const smuggled = 'GET /t/ucws/smuggled HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n';
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;

  it.each(['GET', 'HEAD', 'DELETE', 'OPTIONS'])(
    'regression: a %s with Transfer-Encoding: chunked carries its body as that request\'s body, never as a second request',
    async (method) => {
      const before = backend.seen.length;
      const responses = await exchange(
        `${method} /t/ucws/first HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(smuggled)}0\r\n\r\n` +
          'GET /t/ucws/second HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n',
        2,
        method === 'HEAD' ? 1 : 0,
      );
      expect(responses.map((r) => r.status)).toEqual([200, 200]);
      // Pipelined: both go to the target at once, in either order; never a third.
      const urls = backend.seen.slice(before).map((r) => r.url);
      expect(urls.sort()).toEqual(['/first', '/second']);
      expect(backend.seen.slice(before).every((r) => r.headers['x-forwarded-for'] === '127.0.0.1')).toBe(true);
      if (method !== 'HEAD') {
        expect(echo(responses[0])).toMatchObject({ method, url: '/first', bodyLength: smuggled.length });
        expect(echo(responses[1]).url).toBe('/second');
      }
    },
  );

  it('regression: GET with Connection: content-length keeps its framing; the body is not a request', async () => {
    const before = backend.seen.length;
    const responses = await exchange(
      `GET /t/ucws/first HTTP/1.1\r\nHost: relay\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}` +
        'GET /t/ucws/second HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n',
      2,
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    expect(backend.seen.slice(before).map((r) => r.url).sort()).toEqual(['/first', '/second']);
    expect(echo(responses[0]).bodyLength).toBe(smuggled.length);
  });

  it('a dot-segment path inside a body never reaches the target', async () => {
    const before = backend.seen.length;
    const inner = 'GET /t/ucws/../../etc HTTP/1.1\r\nHost: x\r\n\r\n';
    await exchange(`POST /t/ucws/p HTTP/1.1\r\nHost: relay\r\nContent-Length: ${inner.length}\r\nConnection: close\r\n\r\n${inner}`, 1);
    expect(backend.seen.slice(before).map((r) => r.url)).toEqual(['/p']);
  });
});

describe('the relay\'s own headers', () => {
  it('regression: naming X-Forwarded-For (and the request id) in Connection does not strip the relay\'s', async () => {
    const [r] = await exchange(
      'GET /t/ucws/conn HTTP/1.1\r\nHost: relay\r\nConnection: close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Ctbridge-Request-Id\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n',
      1,
    );
    const h = echo(r).headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('relay');
    expect(h['x-ctbridge-request-id']).toBe(r.headers['x-ctbridge-request-id']);
  });

  it('regression: 1,000 small headers do not push the relay\'s headers out', async () => {
    const many = Array.from({ length: 1000 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    const [r] = await exchange(`GET /t/ucws/many HTTP/1.1\r\nHost: relay\r\n${many}X-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n`, 1);
    expect(r.status).toBe(200);
    const h = echo(r).headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
    // The relay's lead, and every caller field follows (the test target reads them all).
    expect(h['x-0']).toBe('0');
    expect(h['x-999']).toBe('999');
  });

  it('forged X-Real-IP, Forwarded and X-Ctbridge-Request-Id never reach the target', async () => {
    const [r] = await exchange(
      'GET /t/ucws/forged HTTP/1.1\r\nHost: relay\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Ctbridge-Request-Id: forged\r\nConnection: close\r\n\r\n',
      1,
    );
    const h = echo(r).headers;
    expect(h['x-real-ip']).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
    expect(h['x-ctbridge-request-id']).not.toBe('forged');
  });
});

describe('upgrades and interim answers', () => {
  it('regression: Upgrade: h2c (what curl --http2 sends) is answered as a plain request, and the connection stays usable', async () => {
    const responses = await exchange(
      'GET /t/ucws/h2c HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n' +
        'GET /t/ucws/after HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n',
      2,
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    const first = echo(responses[0]);
    expect(first.url).toBe('/h2c');
    expect(first.headers.upgrade).toBeUndefined();
    expect(first.headers['http2-settings']).toBeUndefined();
    expect(echo(responses[1]).url).toBe('/after');
  });

  it('Expect: 100-continue is answered by the relay once the request is admitted; the body then goes through', async () => {
    const body = 'x'.repeat(1000);
    const socket = net.connect(relay.port, '127.0.0.1');
    socket.setEncoding('latin1');
    let text = '';
    const got = (pattern: RegExp) => new Promise<void>((resolve) => {
      const check = (): void => {
        if (pattern.test(text)) {
          socket.off('data', on);
          resolve();
        }
      };
      const on = (c: string): void => {
        text += c;
        check();
      };
      socket.on('data', on);
      check();
    });
    socket.write(`POST /t/ucws/continue HTTP/1.1\r\nHost: relay\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    await got(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    socket.write(body);
    await got(/"bodyLength":1000/);
    socket.destroy();
    const final = parseResponses(text.slice(text.indexOf('\r\n\r\n') + 4))[0];
    expect(final.status).toBe(200);
    expect(echo(final).headers.expect).toBeUndefined();
  });

  it('Expect: 100-continue with a declared body over the limit gets 413 and no 100', async () => {
    const before = backend.seen.length;
    const [r] = await exchange('POST /t/ucws/big HTTP/1.1\r\nHost: relay\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n', 1);
    expect(r.status).toBe(413);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_BODY_TOO_LARGE');
    expect(backend.seen.length).toBe(before);
  });
});
