import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startAgent, type AgentHandle } from '../../../agent/index.js';
import type { TunnelStream } from '../../../src/mux/stream.js';
import { FakeRelay, LogCapture, freePort, startTarget, testConfig, tunnelRequest, type RelayConn } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(tunnels: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const relay = await FakeRelay.start();
  cleanups.push(() => relay.close());
  const logs = new LogCapture();
  const agent: AgentHandle = await startAgent(await testConfig(relay.url, tunnels, extra), logs.logger);
  cleanups.push(() => agent.close());
  const conn: RelayConn = await relay.accept(0);
  await agent.whenReady();
  return { relay, logs, agent, conn, session: conn.session };
}

async function target(handler?: Parameters<typeof startTarget>[0]) {
  const t = await startTarget(handler);
  cleanups.push(t.close);
  return t;
}

describe('agent target proxy', () => {
  it('proxies a request to the tunnel target under its base path, with the target Host', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: `${t.url}/app/` } });
    const reply = await tunnelRequest(session, 't1', {
      method: 'POST',
      path: '/a%2Fb/c?x=1&token=s3cret',
      headers: { 'x-ctbridge-request-id': 'req-1', 'x-forwarded-for': '203.0.113.9', authorization: 'Basic c2VjcmV0', cookie: 'sid=abc', 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-target']).toBe('yes');
    expect(t.seen).toHaveLength(1);
    expect(t.seen[0]).toMatchObject({ method: 'POST', url: '/app/a%2Fb/c?x=1&token=s3cret', body: 'hello' });
    expect(t.seen[0].headers.host).toBe(`127.0.0.1:${t.port}`);
    expect(t.seen[0].headers['x-forwarded-for']).toBe('203.0.113.9');
    expect(t.seen[0].headers.authorization).toBe('Basic c2VjcmV0');

    const line = await logs.waitFor('request');
    expect(line).toMatchObject({ level: 30, requestId: 'req-1', tunnel: 't1', method: 'POST', status: 200, bytesIn: 5 });
    expect(line.path).toBe('/a%2Fb/c?x=1&token=[REDACTED]');
    expect(line.bytesOut).toBe(reply.body.length);
    expect(typeof line.durationMs).toBe('number');
    for (const secret of ['s3cret', 'c2VjcmV0', 'sid=abc']) expect(logs.all).not.toContain(secret);
  });

  it('keeps a tunnel stream alive across requests (keep-alive), even if the target says Connection: close', async () => {
    const t = await target((_req, res) => res.writeHead(200, { connection: 'close' }).end('ok'));
    const { session } = await setup({ t1: { target: t.url } });
    const streams: TunnelStream[] = [];
    class StreamAgent extends http.Agent {
      override createConnection(): never {
        const s = session.openStream({ kind: 'http', tunnel: 't1' });
        streams.push(s);
        return s as never;
      }
    }
    const agent = new StreamAgent({ keepAlive: true, maxSockets: 1 });
    for (const path of ['/one', '/two', '/three']) {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get({ agent, path, headers: { host: 'relay.example' } }, resolve).on('error', reject));
      res.resume();
      await once(res, 'end');
      expect(res.statusCode).toBe(200);
    }
    expect(streams).toHaveLength(1);
    expect(t.seen.map((s) => s.url)).toEqual(['/one', '/two', '/three']);
    agent.destroy();
  });

  it('applies the hostHeader policy: preserve and literal', async () => {
    const t = await target();
    const { session } = await setup({
      t1: { target: t.url, hostHeader: 'preserve' },
      t2: { target: t.url, hostHeader: 'intranet.example:8080' },
    });
    await tunnelRequest(session, 't1', { headers: { host: 'public.example.com' } });
    await tunnelRequest(session, 't2', { headers: { host: 'public.example.com' } });
    expect(t.seen.map((s) => s.headers.host)).toEqual(['public.example.com', 'intranet.example:8080']);
  });

  it('refuses paths outside allowPaths with 404 without contacting the target', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: t.url, allowPaths: ['/ct/ctregister.asp', '/api/'] } });
    for (const path of ['/other', '/ct/ctregister.aspx', '/api/%2e%2e/secret', '/api/..%5csecret', '/apix']) {
      const reply = await tunnelRequest(session, 't1', { path, headers: { 'x-ctbridge-request-id': 'r' } });
      expect(reply.status, path).toBe(404);
      expect(reply.headers['x-ctbridge-error']).toBe('CTB_PATH_NOT_ALLOWED');
      expect(reply.headers['x-ctbridge-request-id']).toBe('r');
      expect(JSON.parse(reply.body).error.code).toBe('CTB_PATH_NOT_ALLOWED');
    }
    expect(t.seen).toHaveLength(0);
    const bad = await tunnelRequest(session, 't1', { path: '/api/%ff' });
    expect(bad.status).toBe(400);
    expect((await tunnelRequest(session, 't1', { path: '/ct/ctregister.asp?login=x' })).status).toBe(200);
    expect((await tunnelRequest(session, 't1', { path: '/api/v1/x' })).status).toBe(200);
    expect(t.seen.map((s) => s.url)).toEqual(['/ct/ctregister.asp?login=x', '/api/v1/x']);
    expect(logs.find('request', (l) => l.code === 'CTB_PATH_NOT_ALLOWED')).toMatchObject({ status: 404, path: '/other' });
  });

  it('resets a stream for a tunnel not in the config with CTB_TUNNEL_NOT_ALLOWED', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: t.url } });
    const stream = session.openStream({ kind: 'http', tunnel: 'nope' });
    stream.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    const [err] = (await once(stream, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('CTB_TUNNEL_NOT_ALLOWED');
    expect(err.message).toContain("tunnel 'nope' is not in this agent's config (agent.yaml)");
    expect(logs.find('refused a stream for a tunnel not in the config')).toMatchObject({ level: 40, tunnel: 'nope' });
    expect(t.seen).toHaveLength(0);
  });

  it('answers 502 CTB_TARGET_UNREACHABLE naming tunnel and target when the target refuses', async () => {
    const port = await freePort();
    const { session, logs } = await setup({ t1: { target: `http://127.0.0.1:${port}` } });
    const reply = await tunnelRequest(session, 't1', { path: '/x', headers: { 'x-ctbridge-request-id': 'req-9' } });
    expect(reply.status).toBe(502);
    expect(reply.headers['x-ctbridge-error']).toBe('CTB_TARGET_UNREACHABLE');
    expect(reply.headers['content-type']).toContain('application/json');
    const body = JSON.parse(reply.body);
    expect(body.error.message).toContain(`the agent could not connect to http://127.0.0.1:${port} for tunnel 't1': connection refused`);
    expect(body.error.message).toContain("agent.yaml's tunnels.t1.target");
    expect(logs.find('target request failed')).toMatchObject({ level: 40, code: 'CTB_TARGET_UNREACHABLE', requestId: 'req-9' });
    expect(logs.find('request')).toMatchObject({ status: 502, code: 'CTB_TARGET_UNREACHABLE' });
  });

  it('answers 504 CTB_TARGET_TIMEOUT when the target stays silent past timeouts.idle', async () => {
    const t = await target(() => { /* never answers */ });
    const { session } = await setup({ t1: { target: t.url, timeouts: { idle: '150ms' } } });
    const reply = await tunnelRequest(session, 't1');
    expect(reply.status).toBe(504);
    expect(reply.headers['x-ctbridge-error']).toBe('CTB_TARGET_TIMEOUT');
  });

  it('answers 504 CTB_REQUEST_TIMEOUT when the whole request takes longer than timeouts.request', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 20); // never idle, never done
      res.on('close', () => clearInterval(timer));
    });
    const { session } = await setup({ t1: { target: t.url, timeouts: { request: '150ms' } } });
    // Headers already went out: the only way left to signal the failure is cutting the stream.
    const pending = tunnelRequest(session, 't1');
    const [err] = (await once(pending.stream, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('CTB_REQUEST_TIMEOUT');
    await expect(pending).rejects.toThrow();

    const slow = await target((_req, res) => setTimeout(() => res.end('late'), 1000));
    const { session: s2 } = await setup({ t2: { target: slow.url, timeouts: { request: '100ms' } } });
    const reply = await tunnelRequest(s2, 't2');
    expect(reply.status).toBe(504);
    expect(reply.headers['x-ctbridge-error']).toBe('CTB_REQUEST_TIMEOUT');
  });

  it('aborts the target request when the relay session ends', async () => {
    let aborted!: () => void;
    const targetAborted = new Promise<void>((resolve) => { aborted = resolve; });
    const t = await target((req, res) => {
      res.writeHead(200);
      res.write('partial');
      res.on('close', () => { if (!res.writableFinished) aborted(); });
    });
    const { session, conn } = await setup({ t1: { target: t.url } });
    const pending = tunnelRequest(session, 't1');
    pending.catch(() => {});
    await once(pending.stream, 'data');
    conn.ws.terminate();
    await targetAborted;
  });

  it('proxies WebSocket upgrades to the target', async () => {
    const t = await target();
    const wss = new WebSocketServer({ server: t.server });
    let upgradeHost: string | undefined;
    wss.on('connection', (ws, req) => {
      upgradeHost = req.headers.host;
      ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
    });
    const { session, logs } = await setup({ t1: { target: `${t.url}/base` } });
    let path = '';
    wss.on('headers', (_h, req) => { path = req.url ?? ''; });
    const client = new WebSocket('ws://relay.example/sock?q=1', {
      createConnection: () => session.openStream({ kind: 'http', tunnel: 't1' }) as never,
    });
    await once(client, 'open');
    client.send('hi');
    const [msg] = await once(client, 'message');
    expect(String(msg)).toBe('echo:hi');
    expect(path).toBe('/base/sock?q=1');
    expect(upgradeHost).toBe(`127.0.0.1:${t.port}`);
    client.close();
    await once(client, 'close');
    wss.close();
    expect(await logs.waitFor('request', (l) => l.upgrade === true)).toMatchObject({ status: 101, tunnel: 't1', path: '/sock?q=1' });
  });

  it('cuts the stream with a RESET when the target dies mid-response', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.socket?.destroy());
    });
    const { session, logs } = await setup({ t1: { target: t.url } });
    const pending = tunnelRequest(session, 't1');
    const [err] = (await once(pending.stream, 'error')) as [Error & { code?: string }];
    expect(err.code).toBe('CTB_TARGET_UNREACHABLE');
    await expect(pending).rejects.toThrow();
    expect(await logs.waitFor('request')).toMatchObject({ aborted: true, code: 'CTB_TARGET_UNREACHABLE', status: 200 });
  });

  it('answers 400 when the request headers exceed limits.maxHeaderSize', async () => {
    const t = await target();
    const { session } = await setup({ t1: { target: t.url } }, { limits: { maxHeaderSize: '1KiB' } });
    const reply = await tunnelRequest(session, 't1', { headers: { 'x-big': 'a'.repeat(2000) } });
    expect(reply.status).toBe(400);
    expect(reply.headers['x-ctbridge-error']).toBe('CTB_BAD_REQUEST');
    expect(JSON.parse(reply.body).error.message).toContain('limits.maxHeaderSize');
    expect(t.seen).toHaveLength(0);
  });

  it('verifies an https target against its own host name with the tunnel ca, whatever the Host header', async () => {
    const cert = readFileSync(new URL('../../fixtures/config/tls/relay.crt', import.meta.url), 'utf8');
    const key = readFileSync(new URL('../../fixtures/config/tls/relay.key', import.meta.url), 'utf8');
    const server = https.createServer({ cert, key }, (req, res) => res.end(`tls ok ${req.headers.host}`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const port = (server.address() as AddressInfo).port;
    const { session } = await setup({
      t1: { target: `https://localhost:${port}`, ca: cert, hostHeader: 'preserve' },
      t2: { target: `https://localhost:${port}` },
      t3: { target: `https://127.0.0.1:${port}`, tlsVerify: false },
    });
    const ok = await tunnelRequest(session, 't1', { headers: { host: 'public.example.com' } });
    expect(ok.body).toBe('tls ok public.example.com');
    const untrusted = await tunnelRequest(session, 't2');
    expect(untrusted.status).toBe(502);
    expect(JSON.parse(untrusted.body).error.message).toContain("set agent.yaml's tunnels.t2.ca");
    expect((await tunnelRequest(session, 't3')).body).toBe(`tls ok 127.0.0.1:${port}`);
  });
});
