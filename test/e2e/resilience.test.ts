/**
 * Agents and relays dying and coming back, as processes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, tokenFor } from '../helpers/tunnel.js';

let backend: Backend | undefined;
afterEach(async () => {
  await stopAll();
  await backend?.close();
  backend = undefined;
});

describe('resilience', () => {
  it('fails a request in flight with 502 within 2 s when the agent is killed', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } } });
    const pending = request(`${relay.url}/t/ucws/longpoll?ms=20000`);
    // Once the long-poll has reached the backend, kill the agent hard.
    await backend.arrived('/longpoll');
    const killedAt = Date.now();
    await agent.stop('SIGKILL');
    const r = await pending;
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(r.status).toBe(502);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_AGENT_DISCONNECTED');
  });

  it('agent comes back and serves after the relay is killed and restarted', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } } });
    expect((await request(`${relay.url}/t/ucws/a`)).status).toBe(200);
    await relay.proc.stop('SIGKILL');
    await agent.waitForLog('disconnected from relay');
    const readyBefore = agent.countLogs('tunnel ready');
    const relay2 = await startRelayProcess({ tunnels: { ucws: {} } }, relay.port);
    const started = Date.now();
    await agent.waitForLog((l) => l.msg === 'tunnel ready' && agent.countLogs('tunnel ready') > readyBefore, 10_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await request(`${relay2.url}/t/ucws/b`)).status).toBe(200);
  });

  it('a second agent takes all new requests when the first is killed', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const token1 = await tokenFor(['ucws'], 'site-a');
    const token2 = await tokenFor(['ucws'], 'site-b');
    const a1 = await startAgentProcess({ relayUrl: relay.url, token: token1, tunnels: { ucws: { target: backend.url } } });
    await startAgentProcess({ relayUrl: relay.url, token: token2, tunnels: { ucws: { target: backend.url } } });
    // Both serve: requests are spread.
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => request(`${relay.url}/t/ucws/spread/${i}`)));
    expect(first.every((r) => r.status === 200)).toBe(true);
    await a1.stop('SIGKILL');
    await relay.proc.waitForLog((l) => l.msg === 'agent disconnected' && l.agentId === 'site-a');
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${relay.url}/t/ucws/after/${i}`)));
    expect(after.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

  it('an agent listing several relay instances serves through each, and through the others when one dies', async () => {
    backend = await startBackend();
    const r1 = await startRelayProcess({ tunnels: { ucws: {} } });
    const r2 = await startRelayProcess({ tunnels: { ucws: {} } });
    const agent = await startAgentProcess({
      relayUrl: r1.url,
      tunnels: { ucws: { target: backend.url } },
      extra: { relay: [r1.url.replace('http', 'ws'), r2.url.replace('http', 'ws')] },
    });
    await r2.proc.waitForLog('agent connected');
    expect((await request(`${r1.url}/t/ucws/via-1`)).status).toBe(200);
    expect((await request(`${r2.url}/t/ucws/via-2`)).status).toBe(200);
    await r1.proc.stop('SIGKILL');
    await agent.waitForLog('disconnected from relay');
    expect((await request(`${r2.url}/t/ucws/still`)).status).toBe(200);
  });

  it('graceful agent shutdown lets the request in flight finish and tells the relay first', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } } });
    const pending = request(`${relay.url}/t/ucws/longpoll?ms=1500`);
    await backend.arrived('/longpoll');
    const exit = agent.stop('SIGTERM');
    await relay.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('agent leaving'));
    const r = await pending;
    expect(r.status).toBe(200);
    expect(await exit).toBe(0);
  });
});
