import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startAgent, type AgentHandle } from '../../../agent/index.js';
import { CtbridgeError } from '../../../src/errors.js';
import { decodeFrames, FrameType, parseJsonPayload, type Frame } from '../../../src/mux/frame.js';
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

function names(pairs: readonly string[]): string[] {
  return pairs.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

describe('agent tunnel requests', () => {
  it('sends a request to the tunnel target under its base path, with the target Host, and logs one line without secrets', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: `${t.url}/app/` } });
    const reply = await tunnelRequest(session, 't1', {
      method: 'POST',
      path: '/a%2Fb/c?x=1&token=s3cret',
      headers: { 'x-forwarded-for': '203.0.113.9', authorization: 'Basic c2VjcmV0', cookie: 'sid=abc', 'content-type': 'text/plain', 'content-length': '5' },
      body: 'hello',
      requestId: 'req-1',
    });
    expect(reply.error).toBeUndefined();
    expect(reply.status).toBe(200);
    expect(reply.header('x-target')).toBe('yes');
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
    expect(line.aborted).toBeUndefined();
    for (const secret of ['s3cret', 'c2VjcmV0', 'sid=abc']) expect(logs.all).not.toContain(secret);
  });

  it('passes raw header pairs both ways: order, case and duplicates kept, hop-by-hop fields dropped', async () => {
    let rawIn: string[] = [];
    const t = await target((req, res) => {
      rawIn = req.rawHeaders;
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('X-MiXeD-Case', 'v');
      res.setHeader('Connection', 'close, X-Hop');
      res.setHeader('X-Hop', 'hop-by-hop');
      res.setHeader('Keep-Alive', 'timeout=5');
      res.end('ok');
    });
    const { session } = await setup({ t1: { target: t.url } });
    const reply = await tunnelRequest(session, 't1', {
      headers: ['Host', 'relay.example', 'X-Dup', 'one', 'Connection', 'X-Drop', 'X-Drop', 'x', 'x-dup', 'two', 'Expect', '100-continue', 'TE', 'trailers'],
    });
    expect(reply.status).toBe(200);
    // To the target: the caller's fields in order (no hop-by-hop, no Expect: undici's business), then the tunnel's Host.
    const sent = rawIn.filter((_, i) => i % 2 === 0);
    expect(sent.filter((n) => /^x-dup$/i.test(n))).toEqual(['X-Dup', 'x-dup']);
    expect(rawIn[rawIn.findIndex((n) => n === 'x-dup') + 1]).toBe('two');
    expect(names(rawIn)).not.toContain('x-drop');
    expect(names(rawIn)).not.toContain('expect');
    expect(names(rawIn)).not.toContain('te');
    // Back to the relay: both Set-Cookie pairs in order, case kept, the target's hop-by-hop fields gone.
    const back = reply.headers;
    expect(back.filter((_, i) => i % 2 === 0 && back[i].toLowerCase() === 'set-cookie').length).toBe(2);
    const cookies = back.flatMap((v, i) => (i % 2 === 1 && back[i - 1].toLowerCase() === 'set-cookie' ? [v] : []));
    expect(cookies).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(back).toContain('X-MiXeD-Case');
    for (const hop of ['connection', 'x-hop', 'keep-alive', 'transfer-encoding']) expect(names(back), hop).not.toContain(hop);
  });

  it('serves each request on its own exchange, whatever the target says about its connection', async () => {
    const t = await target((_req, res) => res.writeHead(200, { connection: 'close', 'content-length': '2' }).end('ok'));
    const { session } = await setup({ t1: { target: t.url } });
    const ids: number[] = [];
    for (const path of ['/one', '/two', '/three']) {
      const pending = tunnelRequest(session, 't1', { path });
      ids.push(pending.exchange.id);
      const reply = await pending;
      expect(reply).toMatchObject({ status: 200, text: 'ok', error: undefined });
      expect(names(reply.headers)).not.toContain('connection');
      expect(pending.exchange.closed).toBe(true);
    }
    expect(new Set(ids).size).toBe(3);
    expect(session.exchangeCount).toBe(0);
    expect(t.seen.map((s) => s.url)).toEqual(['/one', '/two', '/three']);
  });

  it("reuses a kept-alive connection to the target across exchanges (the tunnel's pool)", async () => {
    const ports: number[] = [];
    const t = await target((req, res) => {
      ports.push(req.socket.remotePort ?? 0);
      res.end('ok');
    });
    const { session } = await setup({ t1: { target: t.url } });
    for (let i = 0; i < 3; i++) expect((await tunnelRequest(session, 't1', { path: `/${i}` })).status).toBe(200);
    expect(ports).toHaveLength(3);
    expect(new Set(ports).size).toBe(1);
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

  it('refuses paths outside allowPaths with CTB_PATH_NOT_ALLOWED without contacting the target', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: t.url, allowPaths: ['/ct/ctregister.asp', '/api/'] } });
    for (const path of ['/other', '/ct/ctregister.aspx', '/api/%2e%2e/secret', '/api/..%5csecret', '/apix']) {
      const reply = await tunnelRequest(session, 't1', { path, requestId: 'r' });
      expect(reply.response, path).toBeUndefined();
      expect(reply.error?.code, path).toBe('CTB_PATH_NOT_ALLOWED');
      expect(reply.error?.status).toBe(404);
      expect(reply.error?.message).toContain("is not in the allowPaths of tunnel 't1'");
    }
    expect(t.seen).toHaveLength(0);
    const bad = await tunnelRequest(session, 't1', { path: '/api/%ff' });
    expect(bad.error).toMatchObject({ code: 'CTB_BAD_REQUEST', message: 'the request path is not valid percent-encoded UTF-8' });
    expect((await tunnelRequest(session, 't1', { path: '/ct/ctregister.asp?login=x' })).status).toBe(200);
    expect((await tunnelRequest(session, 't1', { path: '/api/v1/x' })).status).toBe(200);
    expect(t.seen.map((s) => s.url)).toEqual(['/ct/ctregister.asp?login=x', '/api/v1/x']);
    expect(logs.find('request', (l) => l.code === 'CTB_PATH_NOT_ALLOWED')).toMatchObject({ status: 404, path: '/other', requestId: 'r' });
  });

  it('resets an exchange for a tunnel not in the config with CTB_TUNNEL_NOT_ALLOWED, and egress from the relay with CTB_PROTOCOL', async () => {
    const t = await target();
    const { session, logs } = await setup({ t1: { target: t.url } });
    const reply = await tunnelRequest(session, 'nope');
    expect(reply.response).toBeUndefined();
    expect(reply.error?.code).toBe('CTB_TUNNEL_NOT_ALLOWED');
    expect(reply.error?.message).toContain("tunnel 'nope' is not in this agent's config (agent.yaml)");
    expect(logs.find('refused an exchange for a tunnel not in the config')).toMatchObject({ level: 40, tunnel: 'nope', code: 'CTB_TUNNEL_NOT_ALLOWED' });
    const egress = await tunnelRequest(session, 't1', { kind: 'egress', method: 'POST', path: '/is_in_request', body: '<x/>' });
    expect(egress.error).toMatchObject({ code: 'CTB_PROTOCOL', message: 'the agent takes no egress exchanges from the relay' });
    expect(t.seen).toHaveLength(0);
  });

  it('resets with CTB_TARGET_UNREACHABLE naming tunnel and target when the target refuses', async () => {
    const port = await freePort();
    const { session, logs } = await setup({ t1: { target: `http://127.0.0.1:${port}` } });
    const reply = await tunnelRequest(session, 't1', { path: '/x', requestId: 'req-9' });
    expect(reply.response).toBeUndefined();
    const err = reply.error as CtbridgeError;
    expect(err.code).toBe('CTB_TARGET_UNREACHABLE');
    expect(err.status).toBe(502);
    expect(err.message).toBe(`the agent could not connect to http://127.0.0.1:${port} for tunnel 't1': connection refused`);
    expect(err.userMessage).toContain("agent.yaml's tunnels.t1.target");
    expect(logs.find('target request failed')).toMatchObject({ level: 40, code: 'CTB_TARGET_UNREACHABLE', requestId: 'req-9' });
    expect(await logs.waitFor('request')).toMatchObject({ status: 502, code: 'CTB_TARGET_UNREACHABLE', aborted: true });
  });

  it('resets with CTB_TARGET_TIMEOUT, seconds as data, when the target stays silent past timeouts.idle', async () => {
    const t = await target(() => { /* never answers */ });
    const { session } = await setup({ t1: { target: t.url, timeouts: { idle: '150ms' } } });
    const reply = await tunnelRequest(session, 't1');
    expect(reply.response).toBeUndefined();
    expect(reply.error).toMatchObject({ code: 'CTB_TARGET_TIMEOUT', params: { seconds: 0.15 } });
  });

  it('resets with CTB_REQUEST_TIMEOUT when the whole request takes longer than timeouts.request, before or after the answer started', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 20); // never idle, never done
      res.on('close', () => clearInterval(timer));
    });
    const { session } = await setup({ t1: { target: t.url, timeouts: { request: '150ms' } } });
    // Headers already went out: the only way left to signal the failure is the reset.
    const started = await tunnelRequest(session, 't1');
    expect(started.status).toBe(200);
    expect(started.body.length).toBeGreaterThan(0);
    expect(started.error).toMatchObject({ code: 'CTB_REQUEST_TIMEOUT', params: { seconds: 0.15 } });

    const slow = await target((_req, res) => setTimeout(() => res.end('late'), 1000));
    const { session: s2 } = await setup({ t2: { target: slow.url, timeouts: { request: '100ms' } } });
    const reply = await tunnelRequest(s2, 't2');
    expect(reply.response).toBeUndefined();
    expect(reply.error).toMatchObject({ code: 'CTB_REQUEST_TIMEOUT', params: { seconds: 0.1 } });
    expect(reply.error?.status).toBe(504);
  });

  /** A target that starts its answer and never ends it; `targetAborted` settles when the agent cuts the request. */
  async function partialTarget() {
    let aborted!: () => void;
    const targetAborted = new Promise<void>((resolve) => { aborted = resolve; });
    const t = await target((_req, res) => {
      res.writeHead(200);
      res.write('partial');
      res.on('close', () => { if (!res.writableFinished) aborted(); });
    });
    return { t, targetAborted };
  }

  it('aborts the target request when the relay session ends', async () => {
    const { t, targetAborted } = await partialTarget();
    const { session, conn } = await setup({ t1: { target: t.url } });
    const pending = tunnelRequest(session, 't1');
    await once(pending.exchange, 'data');
    conn.ws.terminate();
    await targetAborted;
    expect((await pending).error?.code).toBe('CTB_AGENT_DISCONNECTED');
  });

  it('aborts the target request when the relay cancels the exchange (caller gone), and logs it', async () => {
    const { t, targetAborted } = await partialTarget();
    const { session, logs } = await setup({ t1: { target: t.url } });
    const pending = tunnelRequest(session, 't1', { requestId: 'gone-1' });
    await once(pending.exchange, 'data');
    pending.exchange.reset(new CtbridgeError('CTB_CANCELLED', 'the caller went away before the answer was complete'));
    await targetAborted;
    expect(await logs.waitFor('request', (l) => l.requestId === 'gone-1')).toMatchObject({ status: 200, code: 'CTB_CANCELLED', aborted: true });
    expect(logs.find('target request failed')).toBeUndefined();
  });

  it("takes the request body from the exchange only as fast as the target reads it (the exchange's credit)", async () => {
    const t = await target();
    // The target reads nothing until told to.
    let readBody!: () => void;
    let bodySize = 0;
    const bodySeen = createHash('sha256');
    t.server.removeAllListeners('request');
    t.server.on('request', (req: IncomingMessage, res) => {
      req.pause();
      readBody = () => {
        req.on('data', (c: Buffer) => {
          bodySize += c.length;
          bodySeen.update(c);
        });
        req.resume();
      };
      req.on('end', () => res.end(JSON.stringify({ size: bodySize, sha: bodySeen.digest('hex') })));
    });
    const { session } = await setup({ t1: { target: t.url } });
    const TOTAL = 48 * 1024 * 1024;
    const body = randomBytes(TOTAL);
    const pending = tunnelRequest(session, 't1', { method: 'PUT', headers: { 'content-length': String(TOTAL) }, body: 'open' });
    const ex = pending.exchange;
    const CHUNK = 64 * 1024;
    let offset = 0;
    let stalledAt = -1;
    while (offset < TOTAL) {
      const ok = ex.send(body.subarray(offset, offset + CHUNK));
      offset += CHUNK;
      if (ok) continue;
      const drained = once(ex, 'drain');
      if (stalledAt < 0) {
        // No drain can be awaited while the target reads nothing: a pause without one means the sender is held.
        const progressed = await Promise.race([drained.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 300))]);
        if (!progressed) {
          stalledAt = ex.bytesOut;
          readBody();
        }
      }
      await drained;
    }
    ex.end();
    const reply = await pending;
    // The agent held the relay back to a window plus what the sockets to the target buffer: far less than the body.
    expect(stalledAt).toBeGreaterThan(0);
    expect(stalledAt).toBeLessThan(TOTAL / 2);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toEqual({ size: TOTAL, sha: createHash('sha256').update(body).digest('hex') });
  }, 60_000);

  it('carries a WebSocket upgrade to the target, then raw bytes both ways', async () => {
    const t = await target();
    const wss = new WebSocketServer({ server: t.server });
    cleanups.push(async () => wss.close());
    let upgradeHost: string | undefined;
    let path = '';
    wss.on('headers', (_h, req) => { path = req.url ?? ''; });
    wss.on('connection', (ws, req) => {
      upgradeHost = req.headers.host;
      ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
    });
    const { session, logs } = await setup({ t1: { target: `${t.url}/base` } });
    const key = randomBytes(16).toString('base64');
    const pending = tunnelRequest(session, 't1', {
      kind: 'upgrade',
      path: '/sock?q=1',
      headers: ['Host', 'relay.example', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', key, 'Sec-WebSocket-Version', '13', 'Connection', 'upgrade'],
      body: 'open',
    });
    const ex = pending.exchange;
    const [head] = await once(ex, 'response');
    expect(head.status).toBe(101);
    const h = (n: string) => (head.headers as string[]).find((_, i, a) => i % 2 === 1 && a[i - 1].toLowerCase() === n);
    expect(h('upgrade')).toBe('websocket');
    expect(h('connection')).toBe('upgrade');
    expect(h('sec-websocket-accept')).toBe(createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'));
    expect(path).toBe('/base/sock?q=1');
    expect(upgradeHost).toBe(`127.0.0.1:${t.port}`);

    // A masked text frame "hi" from the caller; the target's unmasked "echo:hi" back.
    let received = Buffer.alloc(0);
    ex.on('data', (c) => (received = Buffer.concat([received, c])));
    ex.send(maskedFrame(0x1, Buffer.from('hi')));
    const echoFrame = Buffer.concat([Buffer.from([0x81, 7]), Buffer.from('echo:hi')]);
    while (!received.subarray(0, echoFrame.length).equals(echoFrame)) await once(ex, 'data');
    // The caller closes: close frame, then its direction ends; the target answers and the exchange is over.
    ex.send(maskedFrame(0x8, Buffer.from([0x03, 0xe8])));
    ex.end();
    const result = await pending;
    expect(result.error).toBeUndefined();
    expect(received.subarray(echoFrame.length, echoFrame.length + 2)).toEqual(Buffer.from([0x88, 2]));
    expect(await logs.waitFor('request', (l) => l.upgrade === true)).toMatchObject({ status: 101, tunnel: 't1', path: '/sock?q=1' });
  });

  // Regression: undici's sockets are not half-open, so 'close' follows the target's FIN at once;
  // a WebSocket close the target completes (RFC 6455 §7.1.1) used to end in RESET
  // CTB_TARGET_UNREACHABLE right after END. A socket that ended first is a clean end.
  it('ends the exchange without a reset when the target closes the WebSocket', async () => {
    const t = await target();
    const wss = new WebSocketServer({ server: t.server });
    cleanups.push(async () => wss.close());
    let targetClosed!: Promise<unknown>;
    wss.on('connection', (ws) => {
      targetClosed = once(ws, 'close');
      ws.on('message', () => ws.close(1000, 'bye'));
    });
    const { session, conn } = await setup({ t1: { target: t.url } });
    // Every frame the agent sends, whatever state the relay's exchange is in.
    const frames: Frame[] = [];
    conn.ws.on('message', (m: Buffer) => decodeFrames(Buffer.from(m), (f) => frames.push(f)));
    const key = randomBytes(16).toString('base64');
    const pending = tunnelRequest(session, 't1', {
      kind: 'upgrade',
      headers: ['Host', 'relay.example', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', key, 'Sec-WebSocket-Version', '13', 'Connection', 'upgrade'],
      body: 'open',
    });
    const ex = pending.exchange;
    await once(ex, 'response');
    ex.on('data', (c) => {
      // The target's close frame: answer it as a browser does, then wait for the target to close the connection.
      if (c[0] === 0x88) ex.send(maskedFrame(0x8, Buffer.from([0x03, 0xe8])));
    });
    ex.send(maskedFrame(0x1, Buffer.from('bye')));
    await once(ex, 'end');
    await targetClosed;
    ex.end(); // the caller's side closes once the server has (as the relay does when the caller's socket ends)
    await pending;
    // A request after it: the agent's frames are in order, so any RESET for the upgrade came before this REPLY.
    expect((await tunnelRequest(session, 't1')).status).toBe(200);
    const resets = frames.filter((f) => f.type === FrameType.RESET && f.id === ex.id).map((f) => parseJsonPayload(f));
    expect(resets).toEqual([]);
  });

  it('cuts the exchange with a RESET when the target dies mid-response', async () => {
    const t = await target((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial', () => res.socket?.destroy());
    });
    const { session, logs } = await setup({ t1: { target: t.url } });
    const reply = await tunnelRequest(session, 't1');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('partial');
    expect(reply.error?.code).toBe('CTB_TARGET_UNREACHABLE');
    expect(reply.error?.message).toContain('the target closed the connection in the middle of its answer');
    expect(await logs.waitFor('request')).toMatchObject({ aborted: true, code: 'CTB_TARGET_UNREACHABLE', status: 200 });
  });

  it('resets with CTB_BAD_REQUEST when the request headers exceed limits.maxHeaderSize', async () => {
    const t = await target();
    const { session } = await setup({ t1: { target: t.url } }, { limits: { maxHeaderSize: '1KiB' } });
    const reply = await tunnelRequest(session, 't1', { headers: { 'x-big': 'a'.repeat(2000) } });
    expect(reply.error).toMatchObject({ code: 'CTB_BAD_REQUEST', message: "the request headers are larger than the agent's limit of 1024 bytes" });
    expect(reply.error?.hint).toBe('raise limits.maxHeaderSize in agent.yaml');
    expect(t.seen).toHaveLength(0);
    // The relay's own fields do not count against the agent's limit.
    const relayAdded = ['Host', 'relay.example', 'X-Forwarded-For', '1'.repeat(600), 'X-Forwarded-Host', 'h'.repeat(600), 'X-Ctbridge-Request-Id', 'r1'];
    expect((await tunnelRequest(session, 't1', { headers: relayAdded })).status).toBe(200);
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
    expect(ok.error).toBeUndefined();
    expect(ok.text).toBe('tls ok public.example.com');
    const untrusted = await tunnelRequest(session, 't2');
    expect(untrusted.error?.code).toBe('CTB_TARGET_UNREACHABLE');
    expect(untrusted.error?.hint).toContain("set agent.yaml's tunnels.t2.ca");
    expect((await tunnelRequest(session, 't3')).text).toBe(`tls ok 127.0.0.1:${port}`);
  });
});

/** A client-to-server WebSocket frame (FIN, masked), payload under 126 bytes. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}
