/**
 * Restarting one of two agents of a tunnel under load loses nothing: the
 * leaving agent says so (drain), the relay sends new exchanges only to the
 * other from that moment, and the exchanges already on their way finish.
 * Real processes; the load is a bounded loop of long-ish requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { failures, load } from '../helpers/load.js';
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

describe('drain', () => {
  it('regression: one of two agents restarted under load fails no request', async () => {
    const tunnels = { ucws: { target: backend.url } };
    const token = await tokenFor(['ucws']);
    const first: CtbridgeProcess = await startAgentProcess({ relayUrl: relay.url, tunnels, token });
    await startAgentProcess({ relayUrl: relay.url, tunnels, token });
    const seenBefore = backend.seen.length;
    const traffic = load((w, i) => `${relay.url}/t/ucws/longpoll?ms=150&w=${w}&i=${i}`, 30, 400);
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

    expect(failures(traffic.results)).toEqual([]);
    // Every request a target ran was answered 200: none was run and then reported failed.
    expect(backend.seen.length - seenBefore).toBe(traffic.results.length);
  });
});
