/**
 * A blackholed agent link (TCP stays open, every byte is dropped both ways:
 * a dead NAT entry, a VPN flap) is found by both sides within the bound of
 * docs/wire-protocol.md ("Liveness"), not after the 30 s heartbeat timeout.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

/**
 * A TCP proxy on loopback that can stop forwarding: while blackholed it
 * reads and drops every byte both ways on every connection, old or new,
 * and keeps the sockets open.
 */
class BlackholeProxy {
  blackholed = false;
  private readonly sockets = new Set<net.Socket>();
  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(upstreamPort: number): Promise<BlackholeProxy> {
    let proxy: BlackholeProxy | undefined;
    const server = net.createServer((down) => {
      const up = net.connect(upstreamPort, '127.0.0.1');
      for (const s of [down, up]) {
        proxy!.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          proxy!.sockets.delete(s);
          // A blackhole passes no FIN either: the other side finds out by itself.
          if (proxy!.blackholed) return;
          down.destroy();
          up.destroy();
        });
      }
      down.on('data', (b: Buffer) => void (proxy!.blackholed || up.write(b)));
      up.on('data', (b: Buffer) => void (proxy!.blackholed || down.write(b)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new BlackholeProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let backend: Backend | undefined;
let proxy: BlackholeProxy | undefined;
afterEach(async () => {
  await stopAll();
  await proxy?.close();
  await backend?.close();
  backend = proxy = undefined;
});

function get(url: string): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers['x-ctbridge-error'] as string | undefined }));
      })
      .on('error', reject);
  });
}

describe('dead-link detection', () => {
  it('a request waiting on a blackholed link fails with CTB_AGENT_DISCONNECTED within 12 s; both sides drop the link and the agent comes back once the path heals', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    proxy = await BlackholeProxy.start(relay.port);
    // Default heartbeat settings (10 s / 30 s): only the dead-link probe can be this fast.
    const agent = await startAgentProcess({ relayUrl: `http://127.0.0.1:${proxy.port}`, tunnels: { ucws: { target: backend.url } } });
    const pending = get(`${relay.url}/t/ucws/longpoll?ms=60000`);
    await backend.arrived('/longpoll');
    proxy.blackholed = true;
    const since = Date.now();
    const r = await pending;
    const waited = Date.now() - since;
    expect(r).toEqual({ status: 502, code: 'CTB_AGENT_DISCONNECTED' });
    expect(waited).toBeLessThan(12_000);
    const relaySide = await relay.proc.waitForLog((l) => l.msg === 'agent disconnected');
    expect(relaySide.reason).toMatch(/^link dead: no answer to a ping/);
    const agentSide = await agent.waitForLog((l) => l.msg === 'disconnected from relay');
    expect(agentSide.reason).toMatch(/^link dead: no answer to a ping/);
    // The relay no longer picks the agent.
    expect(await get(`${relay.url}/t/ucws/after`)).toEqual({ status: 502, code: 'CTB_AGENT_NOT_CONNECTED' });
    // Heal: the agent's next dial gets through.
    proxy.blackholed = false;
    await agent.waitForLog((l) => l.msg === 'tunnel ready' && agent.countLogs('tunnel ready') > 1, 30_000);
    expect((await get(`${relay.url}/t/ucws/healed`)).status).toBe(200);
  });

  it('an idle blackholed link is dropped by both sides within heartbeat.timeout', async () => {
    backend = await startBackend();
    const heartbeat = { interval: '1s', timeout: '3s' };
    const relay = await startRelayProcess({ tunnels: { ucws: {} }, heartbeat });
    proxy = await BlackholeProxy.start(relay.port);
    const agent = await startAgentProcess({ relayUrl: `http://127.0.0.1:${proxy.port}`, tunnels: { ucws: { target: backend.url } }, extra: { heartbeat } });
    proxy.blackholed = true;
    const since = Date.now();
    const [relaySide, agentSide] = await Promise.all([
      relay.proc.waitForLog((l) => l.msg === 'agent disconnected'),
      agent.waitForLog((l) => l.msg === 'disconnected from relay'),
    ]);
    expect(Date.now() - since).toBeLessThan(12_000);
    expect(relaySide.reason).toMatch(/^link dead: nothing heard for \d+ ms \(heartbeat.timeout 3000 ms\)$/);
    expect(agentSide.reason).toMatch(/^link dead: nothing heard for \d+ ms/);
  });
});
