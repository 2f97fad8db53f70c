import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startAgent, type AgentHandle } from '../../../agent/index.js';
import { CloseCode, PROTOCOL_VERSION, SOFTWARE_VERSION } from '../../../src/protocol.js';
import { FakeRelay, LogCapture, freePort, startTarget, testConfig, testToken, tunnelRequest } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function relay() {
  const r = await FakeRelay.start();
  cleanups.push(() => r.close());
  return r;
}

async function agentFor(relayUrl: string, tunnels: Record<string, unknown> = { t1: { target: 'http://127.0.0.1:9' } }, extra: Record<string, unknown> = {}) {
  const logs = new LogCapture();
  const config = await testConfig(relayUrl, tunnels, extra);
  const agent: AgentHandle = await startAgent(config, logs.logger);
  cleanups.push(async () => {
    await agent.close();
    // Every state change the connection made was one its table allows (agent/relay-connection-state.ts).
    expect(logs.find('relay connection refused a state change it does not allow (a bug in the agent)')).toBeUndefined();
  });
  return { agent, logs, config };
}

describe('agent relay connection', () => {
  it('sends the token, says hello with its tunnels, and is ready after ready', async () => {
    const r = await relay();
    const { agent, logs, config } = await agentFor(r.url, { t1: { target: 'http://127.0.0.1:9' }, t2: { target: 'http://127.0.0.1:9' } });
    expect(agent.connected).toBe(false);
    const conn = await r.connection(0);
    expect(conn.headers.authorization).toBe(`Bearer ${config.token}`);
    expect(conn.headers['sec-websocket-extensions']).toBeUndefined();
    expect(await conn.hello).toEqual({ type: 'hello', version: PROTOCOL_VERSION, tunnels: ['t1', 't2'], software: SOFTWARE_VERSION, hostname: hostname(), window: 256 * 1024 });
    const readyEvent = once(agent as never, 'ready');
    conn.ready({ t1: 'https://relay.example/t/t1/', t2: 'https://relay.example/t/t2/' });
    await agent.whenReady();
    expect(agent.connected).toBe(true);
    expect((await readyEvent)[0]).toMatchObject({ connectionId: 'c0' });
    expect(logs.find('tunnel ready')).toMatchObject({ level: 30, connectionId: 'c0', publicUrls: { t1: 'https://relay.example/t/t1/' } });
    expect(logs.find('serving tunnel', (l) => l.tunnel === 't2')).toMatchObject({ publicUrl: 'https://relay.example/t/t2/' });
    expect(logs.find('connecting to relay')).toMatchObject({ via: 'direct', attempt: 1 });
    expect(logs.find('agent token')).toMatchObject({ agentId: 'test-agent', tunnels: ['t1', 't2', 't3'] });
    expect(logs.all).not.toContain(config.token);
  });

  it('reconnects after the relay drops the connection', async () => {
    const r = await relay();
    const { agent, logs } = await agentFor(r.url);
    const first = await r.accept(0);
    await agent.whenReady();
    const disconnected = once(agent as never, 'disconnect');
    first.session.close(CloseCode.GOING_AWAY, 'relay restarting');
    await disconnected;
    expect(agent.connected).toBe(false);
    expect(logs.find('disconnected from relay')).toMatchObject({ level: 40, closeCode: 1001, reason: 'relay restarting' });
    expect(logs.find('reconnecting')).toMatchObject({ attempt: 2 });
    const second = await r.accept(1);
    expect((await second.hello).tunnels).toEqual(['t1']);
    await agent.whenReady();
    expect(agent.connected).toBe(true);
  });

  it('explains a 4401 token refusal with the fix and retries at maxDelay', async () => {
    const r = await relay();
    const { logs, config } = await agentFor(r.url);
    const conn = await r.connection(0);
    await conn.hello;
    conn.session.close(CloseCode.TOKEN_INVALID, 'agent token expired at 2026-01-01T00:00:00Z');
    const line = await logs.waitFor('relay refused the agent token');
    expect(line).toMatchObject({ level: 50, code: 'CTB_TOKEN_INVALID', closeCode: 4401, reason: 'agent token expired at 2026-01-01T00:00:00Z' });
    expect(line.hint).toContain('ctbridge token');
    expect(line.hint).toContain('--agent test-agent');
    expect(line.hint).toContain('CTBRIDGE_AGENT_TOKEN');
    expect(await logs.waitFor('reconnecting')).toMatchObject({ delayMs: config.reconnect.maxDelay });
    await r.connection(1);
    expect(logs.all).not.toContain(config.token);
  });

  it('explains a 4403 tunnel refusal', async () => {
    const r = await relay();
    const { logs } = await agentFor(r.url);
    const conn = await r.connection(0);
    await conn.hello;
    conn.session.close(CloseCode.TUNNEL_NOT_ALLOWED, "tunnel 't1' is not in the agent token");
    const line = await logs.waitFor('relay refused a tunnel');
    expect(line).toMatchObject({ level: 50, code: 'CTB_TUNNEL_NOT_ALLOWED', reason: "tunnel 't1' is not in the agent token" });
    expect(line.hint).toContain('remove it from tunnels: in agent.yaml');
  });

  it('logs cannot reach relay naming host:port, and keeps retrying', async () => {
    const port = await freePort();
    const { logs } = await agentFor(`ws://127.0.0.1:${port}`);
    const line = await logs.waitFor('cannot reach relay');
    expect(line).toMatchObject({ level: 50, code: 'CTB_RELAY_UNREACHABLE', relay: `127.0.0.1:${port}` });
    expect(line.detail).toContain(`connection refused by relay 127.0.0.1:${port}`);
    await logs.waitFor('connecting to relay', (l) => l.attempt === 3);
  });

  it('reports an unexpected HTTP status on the upgrade', async () => {
    const server = http.createServer((_req, res) => res.writeHead(404).end('not here'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const { logs } = await agentFor(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/wrong`);
    const line = await logs.waitFor('unexpected response to the WebSocket upgrade');
    expect(line).toMatchObject({ level: 50, status: 404 });
    expect(line.hint).toContain('agentPath');
  });

  it('reads the code, sentence and request id from a JSON error body on the upgrade', async () => {
    const body = JSON.stringify({ error: { details: 'x', _type: 'CtbridgeError', code: 'CTB_TOKEN_INVALID', message: 'agent token expired at 2026-01-01T00:00:00Z', requestId: '0a1b2c3d0000002a' } });
    const server = http.createServer((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end(body));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const { logs } = await agentFor(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const line = await logs.waitFor('relay refused the agent token');
    expect(line).toMatchObject({ level: 50, code: 'CTB_TOKEN_INVALID', status: 401, reason: 'agent token expired at 2026-01-01T00:00:00Z', requestId: '0a1b2c3d0000002a' });
  });

  it('a 503 whose body says CTB_RELAY_BUSY is a warning with that code and the relay\'s request id, not a protocol problem', async () => {
    const body = JSON.stringify({ error: { details: 'x', _type: 'CtbridgeError', code: 'CTB_RELAY_BUSY', message: 'The relay is admitting many agent connections at once; retry after the Retry-After delay.', requestId: '0a1b2c3d0000002b' } });
    const server = http.createServer((_req, res) => res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(body));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const { logs } = await agentFor(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const line = await logs.waitFor('relay turned the connection away for now');
    expect(line).toMatchObject({ level: 40, code: 'CTB_RELAY_BUSY', status: 503, requestId: '0a1b2c3d0000002b', reason: expect.stringMatching(/^The relay is admitting/), hint: expect.stringMatching(/^nothing to do/) });
  });

  it('comes back after a busy relay\'s Retry-After, jittered, and that does not grow its backoff (503 CTB_RELAY_BUSY)', async () => {
    // The backoff's jitter at its top: a grown backoff would show as a longer delay after the refusals.
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    cleanups.push(async () => void vi.restoreAllMocks());
    let dials = 0;
    const server = http.createServer();
    server.on('upgrade', (_req, socket) => {
      socket.on('error', () => undefined);
      if (++dials > 2) return socket.destroy(); // then a dial that fails without an answer
      const body = JSON.stringify({ error: { code: 'CTB_RELAY_BUSY', message: 'this relay node is admitting many agents at once; connect again shortly' } });
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nX-Ctbridge-Error: CTB_RELAY_BUSY\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const { logs } = await agentFor(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await logs.waitFor('reconnecting', (l) => l.attempt === 4);
    const delays = logs.lines.filter((l) => l.msg === 'reconnecting').map((l) => l.delayMs);
    // Retry-After: 1 spread over [0.5, 1.5) s, twice; then the first step of the backoff (initialDelay 10 ms), not the third.
    expect(delays).toEqual([1499, 1499, 10]);
  });

  it('warns when the token expires soon', async () => {
    const r = await relay();
    const logs = new LogCapture();
    const config = await testConfig(r.url, { t1: { target: 'http://127.0.0.1:9' } }, { token: await testToken(['t1'], 3 * 24 * 3600_000) });
    const agent = await startAgent(config, logs.logger);
    cleanups.push(() => agent.close());
    expect(logs.find('agent token expires soon')).toMatchObject({ level: 40 });
  });

  it('close() sends drain, waits for drained, lets in-flight requests finish, then closes with 1000', async () => {
    const t = await startTarget((_req, res) => setTimeout(() => res.end('done'), 150));
    cleanups.push(t.close);
    const r = await relay();
    const { agent, logs } = await agentFor(r.url, { t1: { target: t.url } });
    const conn = await r.accept(0);
    await agent.whenReady();
    const pending = tunnelRequest(conn.session, 't1');
    await new Promise<void>((resolve) => t.server.once('request', () => resolve()));
    const closing = agent.close();
    expect(await conn.drain).toEqual({ type: 'drain', reason: 'agent shutting down' });
    const reply = await pending;
    expect(reply).toMatchObject({ status: 200, text: 'done', error: undefined });
    await closing;
    expect(conn.controls.filter((m) => m.type !== 'hello')).toEqual([{ type: 'drain', reason: 'agent shutting down' }]);
    expect(await conn.closed).toEqual([1000, 'agent shutting down']);
    expect(agent.connected).toBe(false);
    await expect(agent.whenReady()).rejects.toMatchObject({ code: 'CTB_SHUTTING_DOWN' });
    expect(logs.find('agent stopped')).toBeDefined();
    expect(logs.find('reconnecting')).toBeUndefined();
  });

  it('close() serves every exchange the relay opened before drained, and refuses the ones after it', async () => {
    const held: (() => void)[] = [];
    const t = await startTarget((req, res) => {
      if (req.url === '/hold') held.push(() => res.end('held'));
      else res.end(`served ${req.url}`);
    });
    cleanups.push(t.close);
    const r = await relay();
    const { agent } = await agentFor(r.url, { t1: { target: t.url } });
    const conn = await r.accept(0);
    await agent.whenReady();
    // One request keeps the agent busy, so close() waits for it after the drain.
    const holding = tunnelRequest(conn.session, 't1', { path: '/hold' });
    await new Promise<void>((resolve) => t.server.once('request', () => resolve()));
    // The relay had one more exchange under way when the drain came: it goes out just before drained.
    let lastBefore!: ReturnType<typeof tunnelRequest>;
    conn.beforeDrained = () => {
      lastBefore = tunnelRequest(conn.session, 't1', { path: '/just-before' });
    };
    const closing = agent.close();
    await conn.drain;
    expect(await lastBefore).toMatchObject({ status: 200, text: 'served /just-before' });
    // After drained, an exchange (a relay breaking the handshake) is refused, not served.
    const after = await tunnelRequest(conn.session, 't1', { path: '/after' });
    expect(after.error).toMatchObject({ code: 'CTB_SHUTTING_DOWN', message: 'the agent is shutting down and takes no new requests' });
    expect(t.seen.map((s) => s.url)).not.toContain('/after');
    held.splice(0).forEach((release) => release());
    expect((await holding).text).toBe('held');
    await closing;
    expect(await conn.closed).toEqual([1000, 'agent shutting down']);
  });

  it('close() goes on without drained from a relay that never confirms, within shutdownGrace', async () => {
    const t = await startTarget();
    cleanups.push(t.close);
    const r = await relay();
    const { agent } = await agentFor(r.url, { t1: { target: t.url } }, { timeouts: { shutdownGrace: '300ms' } });
    const conn = await r.accept(0);
    await agent.whenReady();
    conn.answerDrain = false;
    const closing = agent.close();
    await conn.drain;
    // Until drained comes (or the wait is over), exchanges are still served.
    expect((await tunnelRequest(conn.session, 't1', { path: '/late' })).status).toBe(200);
    await closing;
    expect(await conn.closed).toEqual([1000, 'agent shutting down']);
  });

  it('close() gives up on requests still running after shutdownGrace', async () => {
    const t = await startTarget(() => { /* never answers */ });
    cleanups.push(t.close);
    const r = await relay();
    const { agent, logs } = await agentFor(r.url, { t1: { target: t.url } }, { timeouts: { shutdownGrace: '100ms' } });
    const conn = await r.accept(0);
    await agent.whenReady();
    const pending = tunnelRequest(conn.session, 't1');
    await new Promise<void>((resolve) => t.server.once('request', () => resolve()));
    await agent.close();
    expect(logs.find('shutdown grace period over; cutting requests still in flight')).toMatchObject({ inFlight: 1 });
    const cut = await pending;
    expect(cut.response).toBeUndefined();
    expect(cut.error).toMatchObject({ code: 'CTB_AGENT_DISCONNECTED' });
    expect(cut.error?.message).toContain('code 1000: agent shutting down');
  });

  it('close() while the relay is unreachable stops retrying and resolves', async () => {
    const port = await freePort();
    // Fake timeouts: a retry timer left behind by close() is then found by running every timer, without waiting for it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { agent, logs } = await agentFor(`ws://127.0.0.1:${port}`);
      const ready = agent.whenReady();
      await logs.waitFor('reconnecting');
      await agent.close();
      await expect(ready).rejects.toMatchObject({ code: 'CTB_SHUTTING_DOWN' });
      const attempts = logs.lines.filter((l) => l.msg === 'connecting to relay').length;
      await vi.runAllTimersAsync();
      expect(logs.lines.filter((l) => l.msg === 'connecting to relay')).toHaveLength(attempts);
    } finally {
      vi.useRealTimers();
    }
  });
});
