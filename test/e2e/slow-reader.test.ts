/**
 * Flow control end to end: a client that reads a 200 MB download slowly must
 * not make the relay or the agent buffer it. Each side may hold about one
 * stream window (256 KiB) plus socket buffers, so their RSS must stay flat.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, expect, it } from 'vitest';
import { expectedHash, startBackend, type Backend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

let backend: Backend | undefined;
afterAll(async () => {
  await stopAll();
  await backend?.close();
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

it('a slow reader of 200 MB stalls only its stream; relay and agent RSS stay bounded', async () => {
  backend = await startBackend();
  const relay = await startRelayProcess({ tunnels: { bulk: {} } });
  const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { bulk: { target: backend.url } } });
  const pids = { relay: relay.proc.child.pid!, agent: agent.child.pid! };
  // Warm both processes up (JIT, pools) so the baseline is honest.
  await request(`${relay.url}/t/bulk/download?bytes=${8 << 20}`);
  const baseline = { relay: rssBytes(pids.relay), agent: rssBytes(pids.agent) };
  const peak = { ...baseline };
  const sampler = setInterval(() => {
    peak.relay = Math.max(peak.relay, rssBytes(pids.relay));
    peak.agent = Math.max(peak.agent, rssBytes(pids.agent));
  }, 100);

  const size = 200 * 1024 * 1024;
  const bytesPerSecond = 40 * 1024 * 1024; // the backend could send many times faster
  const hash = createHash('sha256');
  let got = 0;
  // Part way through, the download stops being read at all until another request on the same tunnel has
  // its whole answer: it goes through while the download is stalled (an event, not a stopwatch). Were it
  // stuck behind the download, it would never finish: the generous bound below says so instead of the test timeout.
  let otherStarted = false;
  let gotWhenOtherDone = -1;
  let stalledAt = -1;
  await new Promise<void>((resolve, reject) => {
    http
      .get(`${relay.url}/t/bulk/download?bytes=${size}`, (res) => {
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          got += chunk.length;
          res.pause();
          if (got > 20 << 20 && !otherStarted) {
            otherStarted = true;
            stalledAt = got;
            const bound = setTimeout(() => reject(new Error(`a request on the same tunnel got no answer within 30 s while a download on it was stalled at ${stalledAt} bytes`)), 30_000);
            request(`${relay.url}/t/bulk/quick`).then(() => {
              clearTimeout(bound);
              gotWhenOtherDone = got;
              res.resume();
            }, reject);
            return;
          }
          setTimeout(() => res.resume(), (chunk.length / bytesPerSecond) * 1000);
        });
        res.on('end', resolve);
        res.on('error', reject);
      })
      .on('error', reject);
  });
  clearInterval(sampler);
  expect(got).toBe(size);
  expect(hash.digest('hex')).toBe(expectedHash(size));
  // The other request finished while the download was stalled, not read any further.
  expect(stalledAt).toBeGreaterThan(20 << 20);
  expect(gotWhenOtherDone).toBe(stalledAt);
  const growth = { relay: peak.relay - baseline.relay, agent: peak.agent - baseline.agent };
  console.log(`slow reader: RSS growth relay ${(growth.relay / 1048576).toFixed(1)} MiB, agent ${(growth.agent / 1048576).toFixed(1)} MiB (baseline relay ${(baseline.relay / 1048576).toFixed(0)} MiB, agent ${(baseline.agent / 1048576).toFixed(0)} MiB)`);
  // 200 MB would show as ~200 MiB of growth without flow control. What a process grows by anyway depends on the
  // Node line's heap sizing: 18-26 MiB on Node 20, 52-54 MiB seen on Node 24 (with V8 pretenuring off, src/v8-flags.ts).
  expect(growth.relay).toBeLessThan(80 * 1024 * 1024);
  expect(growth.agent).toBeLessThan(80 * 1024 * 1024);
}, 120_000);
