/**
 * Restarting one of two agents of a tunnel under load loses nothing: the
 * leaving agent says so (drain), the relay sends new exchanges only to the
 * other from that moment, and the exchanges already on their way finish.
 * Real processes; the load is a bounded loop of long-ish requests.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
let relay: RelayInfo;

beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({ tunnels: { ucws: {} } });
});

afterAll(async () => {
  await stopAll();
  await backend.close();
});

function get(path: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: relay.port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
  });
}

/** `workers` loops of requests until stopped (or `maxEach` requests each); counts answers by status. */
function load(workers: number, maxEach: number) {
  const statuses = new Map<number, number>();
  let answered = 0;
  let stopped = false;
  const waiters: { n: number; resolve: () => void }[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; i < maxEach && !stopped; i++) {
      const status = await get(`/t/ucws/longpoll?ms=150&w=${w}&i=${i}`, agent);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      answered++;
      for (const x of waiters.filter((x) => answered >= x.n)) {
        waiters.splice(waiters.indexOf(x), 1);
        x.resolve();
      }
    }
  });
  return {
    statuses,
    get answered() {
      return answered;
    },
    /** Resolves once `more` further answers have come in. */
    more(more: number): Promise<void> {
      const n = answered + more;
      return new Promise((resolve) => (answered >= n ? resolve() : waiters.push({ n, resolve })));
    },
    async stop(): Promise<void> {
      stopped = true;
      for (const x of waiters.splice(0)) x.resolve();
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

describe('drain', () => {
  it('regression: one of two agents restarted under load fails no request', async () => {
    const tunnels = { ucws: { target: backend.url } };
    const token = await tokenFor(['ucws']);
    const first: CtbridgeProcess = await startAgentProcess({ relayUrl: relay.url, tunnels, token });
    await startAgentProcess({ relayUrl: relay.url, tunnels, token });
    const seenBefore = backend.seen.length;
    const traffic = load(30, 400);
    await traffic.more(100);

    // SIGTERM while ~30 requests are in flight on both agents.
    const exited = first.stop('SIGTERM');
    await relay.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('agent leaving'));
    expect(await exited).toBe(0);
    await traffic.more(100);

    // And back: the restarted agent takes its share again.
    const again = await startAgentProcess({ relayUrl: relay.url, tunnels, token });
    await again.waitForLog((l) => l.msg === 'request');
    await traffic.more(100);
    await traffic.stop();

    expect(Object.fromEntries(traffic.statuses)).toEqual({ 200: traffic.answered });
    // Every request a target ran was answered 200: none was run and then reported failed.
    expect(backend.seen.length - seenBefore).toBe(traffic.answered);
  });
});
