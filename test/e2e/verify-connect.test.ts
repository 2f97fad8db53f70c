/**
 * `ctbridge agent verify --connect` against the corporate set-ups: each run
 * prints its steps with ✓/✗, and the step that fails is the one named.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { CloseCode, SUBPROTOCOL } from '../../src/protocol.js';
import { stopAll, runToEnd, tempDir, writeYaml } from '../helpers/processes.js';
import { startSquid } from '../helpers/squid.js';
import { needs } from '../helpers/system.js';
import type { ForwardProxy } from '../helpers/tinyproxy.js';
import { startRelayProcess, tokenFor } from '../helpers/tunnel.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/config/tls/${name}`, import.meta.url));

let proxy: ForwardProxy | undefined;
const servers: net.Server[] = [];
afterEach(async () => {
  await stopAll();
  await proxy?.close();
  proxy = undefined;
  for (const s of servers.splice(0)) {
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const c of held.get(s) ?? []) c.destroy();
    await closed;
  }
});

/** Every connection each test server took, to end them (a server closes only once they are gone). */
const held = new WeakMap<net.Server, Set<net.Socket>>();

/** A loopback server for a relay that misbehaves; its URL as http://127.0.0.1:port. */
async function listen<T extends net.Server>(server: T): Promise<string> {
  servers.push(server);
  const sockets = new Set<net.Socket>();
  held.set(server, sockets);
  server.on('connection', (c: net.Socket) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A TCP server that takes connections and never says a word. */
function silent(): net.Server {
  return net.createServer((s) => s.on('error', () => undefined));
}

async function verify(relayUrl: string, extra: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, token?: string) {
  const file = writeYaml(tempDir(), 'agent.yaml', {
    relay: relayUrl.replace(/^http/, 'ws'),
    token: token ?? (await tokenFor(['ucws'])),
    tunnels: { ucws: { target: 'http://127.0.0.1:9' } },
    timeouts: { connect: '5s' },
    ...extra,
  });
  const r = await runToEnd(['agent', 'verify', '--connect', '--config', file], env);
  const failed = /^✗ (\S+(?: auth)?)/m.exec(r.stdout)?.[1];
  return { ...r, failed };
}

const squidPackage = needs('squid', 'the NTLM proxy that verify --connect authenticates with');

describe('agent verify --connect', () => {
  it('direct to a relay: every step passes, exit 0', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const r = await verify(relay.url, { proxy: 'none' });
    expect(r.stdout).toMatch(/✓ proxy\s+DIRECT/);
    expect(r.stdout).toMatch(/✓ websocket\s+the relay accepted the token/);
    expect(r.failed, r.stdout).toBeUndefined();
    expect(r.code).toBe(0);
  });

  it('a relay certificate the configured trust does not cover: the tls step fails and names ca:', async () => {
    const relay = await startRelayProcess({ tls: { cert: fixture('relay.crt'), key: fixture('relay.key') }, tunnels: { ucws: {} } });
    const r = await verify(`https://127.0.0.1:${relay.port}`, { proxy: 'none' });
    expect(r.failed).toBe('tls');
    expect(r.stdout).toMatch(/what to do: .*ca:/);
    expect(r.code).toBe(1);
    const trusted = await verify(`https://127.0.0.1:${relay.port}`, { proxy: 'none', ca: fixture('relay.crt') });
    expect(trusted.stdout).toMatch(/✓ tls\s+certificate for localhost/);
    expect(trusted.code, trusted.stdout + trusted.stderr).toBe(0);
  });

  it('a token the relay refuses: the websocket step fails with the relay\'s code, sentence and request id', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const r = await verify(relay.url, { proxy: 'none' }, {}, await tokenFor(['ucws'], 'acme-1', 3600_000, 'another-secret-0123456789abcdef-0123456789'));
    expect(r.failed, r.stdout + r.stderr).toBe('websocket');
    expect(r.stdout).toContain('relay refused the agent token (CTB_TOKEN_INVALID)');
    const requestId = /relay says: The relay refused the on-premise agent for this tunnel; .*\(request id ([0-9a-f]{16})\)/.exec(r.stdout)?.[1];
    expect(requestId, r.stdout).toBeDefined();
    expect(r.stdout).toMatch(new RegExp(`what to do: give the relay operator request id ${requestId}`));
    // The operator finds the why under that id.
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'bad_signature' && l.requestId === requestId);
  });

  it('a refused upgrade: the relay\'s JSON code, sentence and request id are shown, as the agent reads them', async () => {
    const body = JSON.stringify({ error: { details: 'CTB_RELAY_BUSY', _type: 'CtbridgeError', code: 'CTB_RELAY_BUSY', message: 'The relay is admitting many agent connections at once; retry after the Retry-After delay.', requestId: '5f0c1a2b0000002a' } });
    const url = await listen(http.createServer((_req, res) => res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '2' }).end(body)));
    const r = await verify(url, { proxy: 'none' });
    expect(r.failed, r.stdout).toBe('websocket');
    expect(r.stdout).toContain('(CTB_RELAY_BUSY)');
    expect(r.stdout).toContain('relay says: The relay is admitting many agent connections at once');
    expect(r.stdout).toContain('request id: 5f0c1a2b0000002a');
  });

  // Regression (review): the TLS and WebSocket waits had no bound; a relay address that took the
  // connection and said nothing hung the command.
  it('a wss:// relay that never answers the TLS handshake: the tls step fails after timeouts.connect, naming what it waited for', async () => {
    const url = await listen(silent());
    const r = await verify(url.replace('http:', 'https:'), { proxy: 'none', timeouts: { connect: '1s' } });
    expect(r.failed, r.stdout).toBe('tls');
    expect(r.stdout).toMatch(/✗ tls\s+no answer within 1s/);
    expect(r.stdout).toContain(`waited 1s (timeouts.connect) for the TLS handshake with relay ${url.replace('http://', '')}`);
    expect(r.code).toBe(1);
  });

  it('a ws:// relay that never answers the upgrade: the websocket step fails after timeouts.connect', async () => {
    const url = await listen(silent());
    const r = await verify(url, { proxy: 'none', timeouts: { connect: '1s' } });
    expect(r.failed, r.stdout).toBe('websocket');
    expect(r.stdout).toMatch(/within 1s/);
    expect(r.code).toBe(1);
  });

  it('a WebSocket server that takes the hello and never gives its verdict: the websocket step fails after timeouts.connect', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, handleProtocols: () => SUBPROTOCOL });
    wss.on('connection', (ws) => ws.on('error', () => undefined));
    const url = await listen(server);
    const r = await verify(url, { proxy: 'none', timeouts: { connect: '1s' } });
    wss.close();
    expect(r.failed, r.stdout).toBe('websocket');
    expect(r.stdout).toContain("waited 1s (timeouts.connect) for the relay's verdict on the token");
  });

  // Regression (review): the verdict was read from the wording of a 4403 close reason ("offered no tunnels").
  it('the token verdict is read from the close code: 4204 passes whatever its reason, a 4403 that reads "offered no tunnels" fails', async () => {
    const judged = async (code: number, reason: string) => {
      const server = http.createServer();
      const wss = new WebSocketServer({ server, handleProtocols: () => SUBPROTOCOL });
      wss.on('connection', (ws) => {
        ws.on('error', () => undefined);
        ws.once('message', () => ws.close(code, reason));
      });
      const url = await listen(server);
      const r = await verify(url, { proxy: 'none' });
      wss.close();
      return r;
    };
    const passed = await judged(CloseCode.NO_TUNNELS_OFFERED, 'fine');
    expect(passed.failed, passed.stdout).toBeUndefined();
    expect(passed.stdout).toMatch(/✓ websocket\s+the relay accepted the token/);
    const refused = await judged(CloseCode.TUNNEL_NOT_ALLOWED, 'agent offered no tunnels');
    expect(refused.failed, refused.stdout).toBe('websocket');
    expect(refused.stdout).toContain('relay refused a tunnel (CTB_TUNNEL_NOT_ALLOWED)');
  });

  it('a PAC that names a proxy that is down, then DIRECT: the next entry is tried, as the agent does', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const down = await listen(net.createServer());
    const port = new URL(down).port;
    const gone = servers.pop()!;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const { writeFileSync } = await import('node:fs');
    const pac = `${tempDir()}/proxy.pac`;
    writeFileSync(pac, `function FindProxyForURL() { return "PROXY 127.0.0.1:${port}; DIRECT"; }`);
    const r = await verify(relay.url, { proxy: `pac+file://${pac}` });
    expect(r.stdout).toMatch(new RegExp(`✗ connect\\s+connection refused by forward proxy 127\\.0\\.0\\.1:${port}; trying the next entry`));
    expect(r.stdout).toMatch(/✓ connect\s+TCP to relay/);
    expect(r.code, r.stdout).toBe(0);
  });

  it('a PAC file that throws: the proxy step fails', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const dir = tempDir();
    const pac = writeYaml(dir, 'proxy.pac', 'x');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(pac, 'function FindProxyForURL() { throw new Error("broken pac"); }');
    const r = await verify(relay.url, { proxy: `pac+file://${pac}` });
    expect(r.failed).toBe('proxy');
    expect(r.stdout).toContain('broken pac');
  });

  squidPackage.describe('through Squid', () => {
    it('NTLM without credentials: the proxy auth step fails naming NTLM; with them every step passes', async () => {
      const relay = await startRelayProcess({ tunnels: { ucws: {} } });
      proxy = await startSquid({ auth: ['ntlm'], connectPorts: [relay.port] }, squidPackage.path);
      const r = await verify(relay.url, { proxy: proxy.url });
      expect(r.stdout).toMatch(/✓ connect\s+TCP to proxy 127\.0\.0\.1:/);
      expect(r.failed).toBe('proxy auth');
      expect(r.stdout).toContain('proxyOffers: NTLM');
      expect(r.stdout).toMatch(/what to do: set proxyAuth: \{scheme: ntlm/);

      const good = await verify(relay.url, { proxy: proxy.url, proxyAuth: { scheme: 'ntlm', username: 'CORP\\svc' } }, { CTBRIDGE_PROXY_PASSWORD: 'verify-S3cret' });
      expect(good.stdout).toMatch(/✓ proxy auth\s+NTLM accepted/);
      expect(good.failed, good.stdout).toBeUndefined();
      expect(good.stdout + good.stderr).not.toContain('verify-S3cret');
    });

    it('a proxy that is down: the connect step fails', async () => {
      const relay = await startRelayProcess({ tunnels: { ucws: {} } });
      proxy = await startSquid({ auth: [], connectPorts: [relay.port] }, squidPackage.path);
      const url = proxy.url;
      await proxy.close();
      const r = await verify(relay.url, { proxy: url });
      expect(r.failed).toBe('connect');
      expect(r.stdout).toContain('connection refused by forward proxy');
    });
  });
});
