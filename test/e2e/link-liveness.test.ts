/**
 * A blackholed agent link (TCP stays open, every byte is dropped both ways:
 * a dead NAT entry, a VPN flap; test/helpers/fault-proxy.ts) is found by both sides within the bound of
 * docs/wire-protocol.md ("Liveness"), not after the 30 s heartbeat timeout.
 */
import { describe, expect, it } from 'vitest';
import { startBackend } from '../helpers/backend.js';
import { cleanUpAfterEach } from '../helpers/cleanup.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { attempt, request } from '../helpers/http.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const closeAfter = cleanUpAfterEach();

describe('dead-link detection on one agent link', () => {
  it('a request waiting on a blackholed link fails with CTB_AGENT_DISCONNECTED within 12 s; both sides drop the link and the agent comes back once the path heals', async () => {
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const proxy = closeAfter(await startFaultProxy(relay.port));
    // Default heartbeat settings (10 s / 30 s): only the dead-link probe can be this fast.
    const agent = await startAgentProcess({ relayUrl: proxy.url, tunnels: { ucws: { target: backend.url } } });
    const pending = attempt(`${relay.url}/t/ucws/longpoll?ms=60000`);
    await backend.arrived('/longpoll');
    proxy.blackhole();
    const since = Date.now();
    const r = await pending;
    const waited = Date.now() - since;
    expect(r).toMatchObject({ status: 502, code: 'CTB_AGENT_DISCONNECTED', complete: true });
    expect(waited).toBeLessThan(12_000);
    const relaySide = await relay.proc.waitForLog((l) => l.msg === 'agent disconnected');
    expect(relaySide.reason).toMatch(/^link dead: no answer to a ping/);
    const agentSide = await agent.waitForLog((l) => l.msg === 'disconnected from relay');
    expect(agentSide.reason).toMatch(/^link dead: no answer to a ping/);
    // The relay no longer picks the agent.
    expect(await attempt(`${relay.url}/t/ucws/after`)).toMatchObject({ status: 502, code: 'CTB_AGENT_NOT_CONNECTED', complete: true });
    // Heal: the agent's next dial gets through.
    proxy.heal();
    await agent.waitForLog((l) => l.msg === 'tunnel ready' && agent.countLogs('tunnel ready') > 1, 30_000);
    expect((await request(`${relay.url}/t/ucws/healed`)).status).toBe(200);
  });

  it('an idle blackholed link is dropped by both sides within heartbeat.timeout', async () => {
    const backend = closeAfter(await startBackend());
    const heartbeat = { interval: '1s', timeout: '3s' };
    const relay = await startRelayProcess({ tunnels: { ucws: {} }, heartbeat });
    const proxy = closeAfter(await startFaultProxy(relay.port));
    const agent = await startAgentProcess({ relayUrl: proxy.url, tunnels: { ucws: { target: backend.url } }, extra: { heartbeat } });
    proxy.blackhole();
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
