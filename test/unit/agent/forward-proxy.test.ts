import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveProxyUrl } from '../../../agent/forward-proxy.js';
import { startAgent } from '../../../agent/index.js';
import { parseAgentConfig } from '../../../src/config/index.js';
import { FakeRelay, LogCapture, testConfig, testToken } from './helpers.js';

const TLS_DIR = new URL('../../fixtures/config/tls/', import.meta.url);
const tlsFile = (name: string) => readFileSync(new URL(name, TLS_DIR), 'utf8');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTP CONNECT proxy that wants Basic user:pass (or no auth if `credentials` is undefined), or only Kerberos. */
async function connectProxy(credentials?: string, negotiateOnly = false) {
  const seen: { target: string; auth: string | undefined }[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const auth = req.headers['proxy-authorization'];
    seen.push({ target: req.url ?? '', auth });
    if (negotiateOnly) {
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nServer: CorpGate/2.1\r\nVia: 1.1 gate.corp\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (credentials !== undefined && auth !== `Basic ${Buffer.from(credentials).toString('base64')}`) {
      // Like tinyproxy: 407 without credentials, 401 for wrong ones.
      socket.end(auth
        ? 'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
        : 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (req.url === 'forbidden.example:443') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { seen, port: (server.address() as AddressInfo).port };
}

async function relay(options?: Parameters<typeof FakeRelay.start>[0]) {
  const r = await FakeRelay.start(options);
  cleanups.push(() => r.close());
  return r;
}

async function run(relayUrl: string, extra: Record<string, unknown>) {
  const logs = new LogCapture();
  const config = await testConfig(relayUrl, { t1: { target: 'http://127.0.0.1:9' } }, extra);
  const agent = await startAgent(config, logs.logger);
  cleanups.push(() => agent.close());
  return { agent, logs, config };
}

function passwordFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ctbridge-pw-')), 'proxy-password');
  writeFileSync(file, 'unit-S3cret\n');
  return file;
}

/** A "proxy" that answers every connection with `answer` (hostile or broken proxies). */
async function rawProxy(answer: string | ((n: number) => string)) {
  let n = 0;
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      n++;
      socket.write(typeof answer === 'string' ? answer : answer(n));
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

describe('hostile or broken forward proxies', () => {
  it('an answer that is not HTTP: a log line naming the proxy, no crash', async () => {
    const r = await relay();
    const port = await rawProxy('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${port}` });
    const line = await logs.waitFor('cannot reach forward proxy');
    expect(String(line.detail)).toContain('is not HTTP');
  });

  it('endless headers are cut off at 32 KiB', async () => {
    const r = await relay();
    const port = await rawProxy(`HTTP/1.1 407 x\r\nX-Junk: ${'a'.repeat(40_000)}\r\n`);
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${port}` });
    const line = await logs.waitFor('cannot reach forward proxy');
    expect(String(line.detail)).toContain('more than 32768 bytes of headers');
  });

  it('a malformed NTLM challenge ends the handshake with a clear message', async () => {
    const r = await relay();
    const port = await rawProxy('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM AAAAAAAA\r\nContent-Length: 0\r\n\r\n');
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${port}`, proxyAuth: { scheme: 'ntlm', username: 'CORP\\u', passwordFile: passwordFile() } });
    const line = await logs.waitFor('forward proxy refused the agent: NTLM handshake failed (407)');
    expect(line).toMatchObject({ code: 'CTB_PROXY_AUTH', detail: 'the proxy sent a malformed NTLM challenge' });
    // Regression (review): the hint blamed keep-alive for a challenge that could not be read.
    expect(String(line.hint)).toMatch(/^the proxy's NTLM challenge is not a valid NTLM message/);
    expect(String(line.hint)).not.toContain('keep-alive');
    expect(logs.all).not.toContain('unit-S3cret');
  });

  it('a proxy that closes between NTLM messages: the handshake failure says it needs keep-alive', async () => {
    const r = await relay();
    const port = await rawProxy('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM TlRMTVNTUAACAAAACQAJAK6qqqoGgggAU8fC/PrK4KEAAAAAAAA6AFdPUktHUk9VUA==\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${port}`, proxyAuth: { scheme: 'ntlm', username: 'CORP\\u', passwordFile: passwordFile() } });
    const line = await logs.waitFor('forward proxy refused the agent: NTLM handshake failed (407)');
    expect(String(line.detail)).toContain('closed the connection in the middle of the NTLM handshake');
    expect(String(line.hint)).toMatch(/keep-alive/);
    expect(String(line.hint)).toContain('keep-alive');
  });
});

describe('agent forward proxy and TLS trust', () => {
  it('reaches the relay through a CONNECT proxy with Basic credentials from the proxy URL', async () => {
    const r = await relay();
    const proxy = await connectProxy('corp\\user:p@ss:word');
    const { agent, logs } = await run(r.url, { proxy: `http://corp%5Cuser:p%40ss%3Aword@127.0.0.1:${proxy.port}` });
    await r.accept(0);
    await agent.whenReady();
    expect(proxy.seen[0].target).toBe(`127.0.0.1:${r.port}`);
    expect(logs.find('connecting to relay')?.via).toBe(`http://corp%5Cuser:[REDACTED]@127.0.0.1:${proxy.port}/`);
    expect(logs.all).not.toContain('p%40ss');
    expect(logs.all).not.toContain('p@ss');
  });

  it('explains a 407 from the proxy', async () => {
    const r = await relay();
    const proxy = await connectProxy('corp:right');
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${proxy.port}` });
    const line = await logs.waitFor('forward proxy refused the agent: proxy authentication required (407)');
    expect(line).toMatchObject({
      level: 50, code: 'CTB_PROXY_AUTH', status: 407, proxyOffers: 'Basic',
      detail: 'the agent sent no proxy credentials; the proxy asks for Basic',
      answeredBy: `forward proxy 127.0.0.1:${proxy.port}; the relay was not reached`,
    });
    expect(line.hint).toContain('HTTPS_PROXY');
    expect(r.conns).toHaveLength(0);
  });

  it('takes a 401 from the proxy (wrong credentials) for a proxy refusal, not the relay refusing the token', async () => {
    const r = await relay();
    const proxy = await connectProxy('corp:right');
    const { logs } = await run(r.url, { proxy: `http://corp:wrong-secret@127.0.0.1:${proxy.port}` });
    const line = await logs.waitFor('forward proxy refused the agent: proxy authentication required (401)');
    expect(line).toMatchObject({ level: 50, code: 'CTB_PROXY_AUTH', proxy: `http://corp:[REDACTED]@127.0.0.1:${proxy.port}/` });
    expect(logs.find('relay refused the agent token')).toBeUndefined();
    expect(logs.all).not.toContain('wrong-secret');
  });

  it('says a proxy that offers only Negotiate (Kerberos) cannot be used, and what IT can do, naming the proxy by its headers', async () => {
    const r = await relay();
    const proxy = await connectProxy(undefined, true);
    const { logs } = await run(r.url, { proxy: `http://corp:secret-pass@127.0.0.1:${proxy.port}` });
    const line = await logs.waitFor('forward proxy refused the agent: proxy authentication required (407)');
    expect(line).toMatchObject({
      code: 'CTB_PROXY_AUTH', proxyOffers: 'Negotiate', via: '1.1 gate.corp',
      answeredBy: `forward proxy 127.0.0.1:${proxy.port} (CorpGate/2.1); the relay was not reached`,
    });
    expect(line.detail).toContain('only Kerberos');
    expect(line.hint).toContain('NTLM or Basic');
    expect(line.hint).toContain(`127.0.0.1:${r.port}`);
    expect(logs.all).not.toContain('secret-pass');
  });

  it('explains a proxy that will not CONNECT to the relay', async () => {
    const proxy = await connectProxy();
    const { logs } = await run('wss://forbidden.example', { proxy: `http://127.0.0.1:${proxy.port}` });
    const line = await logs.waitFor('forward proxy refused the connection to the relay');
    expect(line).toMatchObject({ status: 403, code: 'CTB_RELAY_UNREACHABLE' });
    expect(line.hint).toContain('forbidden.example:443');
  });

  it('names the proxy when the proxy cannot be reached', async () => {
    const r = await relay();
    const proxy = await connectProxy();
    const port = proxy.port;
    await Promise.all(cleanups.splice(-1).map((c) => c())); // stop the proxy: its port now refuses
    const { logs } = await run(r.url, { proxy: `http://127.0.0.1:${port}` });
    const line = await logs.waitFor('cannot reach forward proxy');
    expect(line.detail).toContain(`forward proxy 127.0.0.1:${port}`);
  });

  it('hints at ca: when the relay certificate is not trusted, and connects with ca: set', async () => {
    const r = await relay({ tls: { cert: tlsFile('relay.crt'), key: tlsFile('relay.key') } });
    const first = await run(r.url, {});
    const line = await first.logs.waitFor('cannot verify the relay certificate');
    expect(line).toMatchObject({ level: 50, code: 'CTB_RELAY_UNREACHABLE' });
    expect(line.hint).toContain('set `ca:` in agent.yaml');
    await first.agent.close();

    const second = await run(r.url, { ca: tlsFile('relay.crt') });
    await r.accept(0);
    await second.agent.whenReady();
  });

  it('env mode follows HTTPS_PROXY / NO_PROXY for the https equivalent of the relay URL', async () => {
    const token = await testToken();
    const config = (relay: string) => parseAgentConfig({ relay, token, tunnels: { t1: { target: 'http://127.0.0.1:9' } } }, 'agent.yaml', {});
    const saved = { ...process.env };
    try {
      for (const k of ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY']) delete process.env[k];
      expect(resolveProxyUrl(config('wss://relay.example.com'))).toBeUndefined();
      process.env.HTTPS_PROXY = 'http://u:p@proxy.corp:3128';
      process.env.HTTP_PROXY = 'http://plain.corp:8080';
      expect(resolveProxyUrl(config('wss://relay.example.com'))).toBe('http://u:p@proxy.corp:3128/');
      expect(resolveProxyUrl(config('ws://relay.example.com'))).toBe('http://plain.corp:8080/');
      process.env.HTTPS_PROXY = 'proxy.corp:3128';
      expect(resolveProxyUrl(config('wss://relay.example.com'))).toBe('http://proxy.corp:3128/');
      process.env.NO_PROXY = '.example.com';
      expect(resolveProxyUrl(config('wss://relay.example.com'))).toBeUndefined();
    } finally {
      process.env = saved;
    }
  });
});
