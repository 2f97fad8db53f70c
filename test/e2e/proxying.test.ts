/**
 * HTTP through relay and agent as real processes: what goes in comes out.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startBackend, BLOCK, expectedHash, type Backend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/http.js';
import { stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
let relay: RelayInfo;
let agent: CtbridgeProcess;
let base: string;

beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({
    timeouts: { request: '60s', idle: '45s' },
    tunnels: { ucws: {}, offline: {}, poll: { timeouts: { idle: '1s', request: '20s' } } },
  });
  agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url }, poll: { target: backend.url } } });
  base = `${relay.url}/t/ucws`;
});

afterAll(async () => {
  await stopAll();
  await backend.close();
});

const json = (r: Reply) => JSON.parse(r.text);

describe('HTTP through the tunnel', () => {
  it.each(['GET', 'POST', 'PUT', 'DELETE'])('%s arrives with path, query and body intact', async (method) => {
    const body = method === 'GET' || method === 'DELETE' ? undefined : `payload for ${method} ✓`;
    const r = await request(`${base}/ws/client/createsession?user=alice&x=%2F%26`, { method, body, headers: body ? { 'content-type': 'text/plain' } : {} });
    expect(r.status).toBe(200);
    const echo = json(r);
    expect(echo.method).toBe(method);
    expect(echo.url).toBe('/ws/client/createsession?user=alice&x=%2F%26');
    expect(echo.bodyLength).toBe(body ? Buffer.byteLength(body) : 0);
    expect(r.headers['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('keeps UTF-8 paths and query strings byte for byte', async () => {
    const path = '/r%C3%A9sum%C3%A9/%E4%B8%AD%E6%96%87/a%20b?q=%D0%91%D0%B0%D0%BD%D0%BA&raw=[ID]&e=&&x';
    const r = await request(`${base}${path}`);
    expect(json(r).url).toBe(path);
  });

  it('carries custom headers and Authorization intact; sets the target host and X-Forwarded-*', async () => {
    const r = await request(`${base}/ws/client/createsession`, {
      method: 'POST',
      body: '{}',
      headers: {
        'X-ucsid': 'local1',
        'X-ucsessionid': 'abc123',
        'X-no401': '1',
        'X-simple': '1',
        Authorization: 'Basic YWxpY2U6c2VjcmV0',
        'X-Forwarded-For': '6.6.6.6',
        Connection: 'close',
      },
    });
    const h = json(r).headers;
    expect(h['x-ucsid']).toBe('local1');
    expect(h['x-ucsessionid']).toBe('abc123');
    expect(h['x-no401']).toBe('1');
    expect(h['x-simple']).toBe('1');
    expect(h.authorization).toBe('Basic YWxpY2U6c2VjcmV0');
    expect(h.host).toBe(`127.0.0.1:${backend.port}`);
    expect(h['x-forwarded-host']).toBe(`127.0.0.1:${relay.port}`);
    expect(h['x-forwarded-proto']).toBe('http');
    // An untrusted client's X-Forwarded-For never reaches the provider: the last (only) entry is the real caller.
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('returns status codes and response headers intact', async () => {
    for (const code of [201, 204, 302, 400, 401, 404, 500, 503]) {
      const r = await request(`${base}/status/${code}`);
      expect(r.status, r.body.toString()).toBe(code);
      if (code !== 204) expect(r.headers['x-custom-response']).toBe('kept');
      expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    }
  });

  it('downloads 50 MB byte-identical', async () => {
    const size = 50 * 1024 * 1024;
    const r = await request(`${base}/download?bytes=${size}`);
    expect(r.body.length).toBe(size);
    expect(createHash('sha256').update(r.body).digest('hex')).toBe(expectedHash(size));
  });

  it('uploads 50 MB byte-identical (chunked, no Content-Length)', async () => {
    const size = 50 * 1024 * 1024;
    const r = await request(`${base}/upload`, {
      method: 'POST',
      headers: { 'transfer-encoding': 'chunked' },
      write: (req) => {
        let sent = 0;
        const pump = (): void => {
          while (sent < size) {
            sent += BLOCK.length;
            if (!req.write(BLOCK)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      },
    });
    expect(r.status).toBe(200);
    expect(json(r).bodyLength).toBe(size);
    expect(json(r).bodySha256).toBe(expectedHash(size));
  });

  it('streams a chunked response as it comes', async () => {
    const r = await request(`${base}/chunked`);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.body.toString()).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\ndone\n');
  });

  it('serves 200 concurrent requests over one agent', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => request(`${base}/echo/${i}?n=${i}`, { agent: new http.Agent({ keepAlive: false }) })),
    );
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(json(r).url).toBe(`/echo/${i}?n=${i}`);
    });
  });

  it('holds a long-poll longer than the idle timeout while the target keeps sending', async () => {
    // The poll tunnel's idle timeout is 1 s: the answer takes 2.5 s, a byte every 250 ms.
    const r = await request(`${relay.url}/t/poll/trickle?ms=2500&every=250`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(`${'.'.repeat(9)}held 2500\n`);
  });

  it('answers 504 CTB_TARGET_TIMEOUT when a long-poll is silent past the idle timeout', async () => {
    const r = await request(`${relay.url}/t/poll/longpoll?ms=5000`);
    expect(r.status).toBe(504);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_TARGET_TIMEOUT');
  });

  it('sends a held answer\'s head at once, before its body', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${base}/held?id=h1`, resolve).on('error', reject);
    });
    // The target has not released the body: the head came on its own.
    expect(res.statusCode).toBe(200);
    const body = new Promise<string>((resolve) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
    });
    backend.release('h1');
    expect(await body).toBe('released');
  });

  it('carries a WebSocket echo through the tunnel', async () => {
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/t/ucws/events?session=1`);
    const messages: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      ws.on('message', (d) => {
        messages.push(d.toString());
        if (messages.length === 1) ws.send('ping through the tunnel');
        else resolve();
      });
      ws.on('error', reject);
    });
    await done;
    ws.close();
    expect(JSON.parse(messages[0])).toEqual({ hello: '/events?session=1' });
    expect(messages[1]).toBe('ping through the tunnel');
  });
});

describe('what the relay refuses', () => {
  it('answers 404 for an unknown tunnel', async () => {
    const r = await request(`${relay.url}/t/nosuch/x`);
    expect(r.status).toBe(404);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_TUNNEL_UNKNOWN');
  });

  it('answers 502 in the UC web service shape when no agent serves a known tunnel', async () => {
    const r = await request(`${relay.url}/t/offline/ws/client/createsession`);
    expect(r.status).toBe(502);
    expect(r.headers['content-type']).toMatch(/application\/json/);
    const body = json(r);
    expect(body.error.details).toBe('agent not connected here: [offline]');
    expect(body.error.code).toBe('CTB_AGENT_NOT_CONNECTED');
    expect(body.error.message).toBe('The on-premise agent for this tunnel is not connected to the relay; try again later, and if it keeps happening, give the request id to the operator.');
    expect(body.error.requestId).toBe(r.headers['x-ctbridge-request-id']);
    // A page of another origin can read it (issue 12, finding 10).
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it.each(['/t/ucws/../offline/x', '/t/ucws/%2e%2e/x', '/t/ucws/a/%2E%2e%2Fb', '/t/ucws/..%5cx', '/t/ucws/./x'])(
    'refuses path traversal %s without reaching the target',
    async (path) => {
      const before = backend.seen.length;
      // The raw path, as it is: a URL would resolve the dots.
      const r = await request(relay.url, { path });
      expect(r.status).toBe(400);
      expect(r.headers['x-ctbridge-error']).toBe('CTB_BAD_REQUEST');
      expect(backend.seen.length).toBe(before);
    },
  );

  it('logs one line per request on both sides sharing the request id, with secrets redacted', async () => {
    const r = await request(`${base}/ws/client/createsession?user=alice&pass=hunter2&token=tok-SECRET-1`, {
      headers: { Authorization: 'Bearer very-secret-bearer', Cookie: 'sid=cookie-secret' },
    });
    const id = r.headers['x-ctbridge-request-id'];
    const relayLine = await relay.proc.waitForLog((l) => l.msg === 'request' && l.requestId === id);
    const agentLine = await agent.waitForLog((l) => l.msg === 'request' && l.requestId === id);
    for (const line of [relayLine, agentLine]) {
      expect(line).toMatchObject({ tunnel: 'ucws', method: 'GET', status: 200 });
      expect(line.path).toBe('/ws/client/createsession?user=alice&pass=[REDACTED]&token=[REDACTED]');
      expect(typeof line.durationMs).toBe('number');
    }
    const all = relay.proc.allOutput + agent.allOutput;
    for (const secret of ['hunter2', 'tok-SECRET-1', 'very-secret-bearer', 'cookie-secret']) expect(all).not.toContain(secret);
  });
});
