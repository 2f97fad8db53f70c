/**
 * Limits and routing options an operator sets in relay.yaml, and the relay's
 * own graceful shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { request, type RequestOptions } from '../helpers/http.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
let relay: RelayInfo;
beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({
    baseDomain: 'tunnels.test',
    limits: { maxStreamsPerAgent: 3, maxHeaderSize: '8KiB' },
    timeouts: { shutdownGrace: '10s' },
    tunnels: { ucws: { maxRequestBody: '1KiB' } },
  });
  await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } } });
});
afterAll(async () => {
  await stopAll();
  await backend.close();
});

/** A request to the relay's public port. */
const send = (path: string, opts: RequestOptions = {}) => request(`http://127.0.0.1:${relay.port}${path}`, opts);

describe('limits', () => {
  it('refuses a declared body over the tunnel limit with 413 before it reaches the target', async () => {
    const before = backend.seen.length;
    const r = await send('/t/ucws/upload', { method: 'POST', body: Buffer.alloc(2048), headers: { 'content-length': 2048 } });
    expect(r.status).toBe(413);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_BODY_TOO_LARGE');
    expect(JSON.parse(r.text).error.message).toMatch(/1024 bytes/);
    expect(backend.seen.length).toBe(before);
  });

  it('refuses a chunked body once it passes the limit with 413', async () => {
    const r = await send('/t/ucws/upload', { method: 'POST', body: Buffer.alloc(4096), chunked: true, headers: { 'transfer-encoding': 'chunked' } });
    expect(r.status).toBe(413);
  });

  it('accepts a body under the limit', async () => {
    const r = await send('/t/ucws/upload', { method: 'POST', body: 'small', headers: { 'content-length': 5 } });
    expect(r.status).toBe(200);
  });

  it('answers 431 for request headers over maxHeaderSize', async () => {
    const r = await send('/t/ucws/x', { headers: { 'x-big': 'a'.repeat(10_000) } });
    expect(r.status).toBe(431);
  });

  it('answers 503 with Retry-After when the agent is at its stream limit', async () => {
    const held = [0, 1, 2].map((i) => send(`/t/ucws/longpoll?ms=1500&i=${i}`));
    await Promise.all([0, 1, 2].map((i) => backend.arrived(`/longpoll?ms=1500&i=${i}`)));
    const r = await send('/t/ucws/x');
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.headers['x-ctbridge-error']).toBe('CTB_AGENT_BUSY');
    expect((await Promise.all(held)).map((h) => h.status)).toEqual([200, 200, 200]);
  });

  it('routes <tunnel>.<baseDomain> by Host', async () => {
    const r = await send('/echo?via=host', { headers: { host: 'ucws.tunnels.test' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).url).toBe('/echo?via=host');
  });

  it('answers /healthz and /readyz on the admin listener, and neither on the public port', async () => {
    const health = await fetch(`${relay.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'alive' });
    expect((await fetch(`${relay.adminUrl}/readyz`)).status).toBe(200);
    expect((await send('/healthz')).status).toBe(404);
  });

  it('serves Prometheus metrics on the admin listener, with only known tunnels as labels; not on the public port', async () => {
    await send('/t/no-such-tunnel/x');
    expect((await send('/metrics')).status).toBe(404);
    const m = await fetch(`${relay.adminUrl}/metrics`);
    const r = { status: m.status, body: await m.text() };
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/ctbridge_requests_total\{tunnel="ucws",status="200"\} \d+/);
    expect(r.body).toMatch(/ctbridge_agents_connected 1/);
    expect(r.body).toMatch(/ctbridge_request_duration_seconds_bucket/);
    expect(r.body).not.toContain('no-such-tunnel');
  });

  it('on SIGTERM lets a request in flight finish, then exits 0 and the agent notices', async () => {
    const pending = send('/t/ucws/longpoll?ms=1000&last=1');
    await backend.arrived('/longpoll?ms=1000&last=1');
    const exit = relay.proc.stop('SIGTERM');
    await relay.proc.waitForLog('relay shutting down');
    expect((await pending).status).toBe(200);
    expect(await exit).toBe(0);
  });
});
