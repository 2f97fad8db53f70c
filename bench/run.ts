/**
 * `npm run bench`: the sample backend, a relay and an agent as real processes
 * on loopback; in one run, the same measurements direct and through the
 * tunnel, with ratios. Figures on stdout, progress on stderr.
 *
 *   BENCH_SECONDS   seconds per load run (default 10)
 *   BENCH_ROUNDS    direct/tunnel run pairs per connection count (default 3, at least 2)
 *   BENCH_WARMUP    seconds of warm-up per path before the first run (default 10:
 *                   with 3 s the tunnel was still getting faster over the next runs)
 *   BENCH_JSON      also write the figures as JSON to this file
 *   BENCH_PROFILE   a directory: relay and agent write V8 CPU profiles there (stopped with SIGTERM at the end)
 *   BENCH_GENERATOR wrk or autocannon (default: wrk when on PATH)
 *
 * Order: RSS idle on fresh processes; warm-up; small GETs at 50 then 1
 * connection(s), direct and tunnel runs alternating, CPU time of backend,
 * relay and agent read from /proc around each run; 100 MB download and
 * upload, best of 3; RSS with 1,000 exchanges held open; as many pairs of
 * 50-connection small-GET runs after that burst (whether it left relay or agent slower:
 * docs/performance.md, "Bursts of concurrent exchanges").
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { cleanupAndWait, type Child, type GcCounts } from './children.js';
import { envInt } from './env.js';
import { download, openExchanges, releaseHeld, upload } from './bulk.js';
import { pickGenerator, runLoad, type Generator } from './load.js';
import { cpuSeconds, machineCpuSeconds, selfAndReapedCpuSeconds, settledRss } from './proc.js';
import { bulk, formatReport, summariseSmall, type Bulk, type Cpu, type PathName, type Report, type Rss, type Sample } from './report.js';
import { startStack, type Stack } from './stack.js';

const SECONDS = envInt('BENCH_SECONDS', 10, 1);
const ROUNDS = envInt('BENCH_ROUNDS', 3, 2);
const WARMUP_SECONDS = envInt('BENCH_WARMUP', 10, 1);
const CONNECTIONS = [50, 1];
const OPEN_EXCHANGES = 1000;
const BULK_BYTES = 100e6;
const BULK_TRIES = 3;
const CPUS = availableParallelism();

const step = (what: string): void => void process.stderr.write(`bench: ${what}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function assertAlive(s: Stack): void {
  for (const c of [s.backend, s.relay, s.agent]) c.assertAlive();
}

function cpuOf(c: Child): number {
  try {
    return cpuSeconds(c.pid);
  } catch (err) {
    throw new Error(`${c.name} (pid ${c.pid}) is gone? ${(err as Error).message}; its last output:\n${c.tail}`);
  }
}

function cpuNow(s: Stack): Cpu {
  return { backend: cpuOf(s.backend), relay: cpuOf(s.relay), agent: cpuOf(s.agent) };
}

/** RSS of fresh processes, before any load. */
async function idleRss(s: Stack): Promise<[number, number]> {
  step('RSS idle (settling)');
  const [relay, agent] = await settledRss([s.relay.pid, s.agent.pid]);
  return [relay, agent];
}

/**
 * RSS with OPEN_EXCHANGES exchanges held open at once, against the RSS just
 * before: last, so that the small-GET runs after it (`afterBurst`) show
 * whether a burst changes the speed.
 */
async function openRss(s: Stack, idle: [number, number]): Promise<Rss> {
  const [relayBeforeMiB, agentBeforeMiB] = await settledRss([s.relay.pid, s.agent.pid]);
  step(`opening ${OPEN_EXCHANGES} exchanges through the tunnel`);
  const open = await openExchanges(s.tunnelUrl, OPEN_EXCHANGES);
  try {
    const [relayOpenMiB, agentOpenMiB] = await settledRss([s.relay.pid, s.agent.pid]);
    const released = await releaseHeld(s.backendUrl);
    if (released !== OPEN_EXCHANGES) throw new Error(`the backend held ${released} responses, expected ${OPEN_EXCHANGES}`);
    const timeout = sleep(15_000).then(() => Promise.reject(new Error('released exchanges did not all end within 15 s')));
    await Promise.race([open.ended, timeout]);
    return { exchanges: OPEN_EXCHANGES, relayIdleMiB: idle[0], agentIdleMiB: idle[1], relayBeforeMiB, agentBeforeMiB, relayOpenMiB, agentOpenMiB };
  } finally {
    open.destroy();
  }
}

/**
 * Runs f, and reads around it the CPU time of backend, relay and agent, and
 * how much of the machine other processes used meanwhile: machine user+system
 * time minus ours (backend, relay, agent, the bench and its finished wrk).
 */
async function metered<T>(s: Stack, f: () => Promise<T>): Promise<{ value: T; cpuS: Cpu; otherCpuPct: number }> {
  assertAlive(s);
  const t0 = process.hrtime.bigint();
  const machine0 = machineCpuSeconds();
  const self0 = selfAndReapedCpuSeconds();
  const before = cpuNow(s);
  const value = await f();
  await sleep(300); // let relay and agent finish closing the connections
  const after = cpuNow(s);
  const ours = selfAndReapedCpuSeconds() - self0;
  const machine = machineCpuSeconds() - machine0;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  assertAlive(s);
  const cpuS: Cpu = { backend: after.backend - before.backend, relay: after.relay - before.relay, agent: after.agent - before.agent };
  const others = machine - ours - cpuS.backend - cpuS.relay - cpuS.agent;
  return { value, cpuS, otherCpuPct: Math.max(0, (others / (wallS * CPUS)) * 100) };
}

const gcSince = (c: Child, from: GcCounts): GcCounts => ({
  scavenges: c.gc.scavenges - from.scavenges,
  full: c.gc.full - from.full,
  promoted: c.gc.promoted - from.promoted,
  pauseMs: c.gc.pauseMs - from.pauseMs,
  reduceMemory: c.gc.reduceMemory - from.reduceMemory,
  outsidePauseMs: c.gc.outsidePauseMs - from.outsidePauseMs,
});

async function sample(gen: Generator, s: Stack, path: PathName, connections: number, seconds: number): Promise<Sample> {
  const url = `${path === 'direct' ? s.backendUrl : s.tunnelUrl}/small`;
  const gc0 = { relay: { ...s.relay.gc }, agent: { ...s.agent.gc } };
  const { value: load, cpuS, otherCpuPct } = await metered(s, () => runLoad(gen, url, connections, seconds));
  const gc = { relay: gcSince(s.relay, gc0.relay), agent: gcSince(s.agent, gc0.agent) };
  const gcNote = path === 'tunnel'
    ? `; promoted per request relay ${Math.round(gc.relay.promoted / load.requests)} B, agent ${Math.round(gc.agent.promoted / load.requests)} B, full GCs ${gc.relay.full}/${gc.agent.full}`
    : '';
  step(
    `  ${path} ${connections}c: ${Math.round(load.rps)} req/s, p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms; ` +
      `other processes ${otherCpuPct.toFixed(0)}% of the machine${gcNote}`,
  );
  return { path, connections, load, cpuS, otherCpuPct, gc };
}

/** BULK_TRIES transfers each way, direct and tunnel alternating; the best MB/s of each. */
async function transfers(s: Stack, f: (base: string, bytes: number) => Promise<number>): Promise<Bulk> {
  const { value, otherCpuPct } = await metered(s, async () => {
    const direct: number[] = [];
    const tunnel: number[] = [];
    for (let i = 0; i < BULK_TRIES; i++) {
      direct.push(await f(s.backendUrl, BULK_BYTES));
      tunnel.push(await f(s.tunnelUrl, BULK_BYTES));
    }
    return { direct, tunnel };
  });
  const b = bulk(value.direct, value.tunnel, otherCpuPct);
  step(`  direct ${value.direct.map((x) => x.toFixed(0)).join(', ')} MB/s; tunnel ${value.tunnel.map((x) => x.toFixed(0)).join(', ')} MB/s; other processes ${otherCpuPct.toFixed(0)}% of the machine`);
  return b;
}

async function main(): Promise<void> {
  const loadAvgAtStart = loadavg();
  const gen = pickGenerator();
  step(`load generator ${gen}, ${SECONDS} s per run, ${ROUNDS} rounds; load average ${loadAvgAtStart.map((x) => x.toFixed(2)).join(' ')}`);
  const s = await startStack();
  step(`backend ${s.backendUrl}, tunnel ${s.tunnelUrl}`);
  for (const c of [s.relay, s.agent]) c.echoWarnings = true;

  const idle = await idleRss(s); // first, on fresh processes

  step(`warm-up, ${WARMUP_SECONDS} s per path`);
  for (const path of ['direct', 'tunnel'] as const) await sample(gen, s, path, 50, WARMUP_SECONDS);
  const samples: Sample[] = [];
  for (const connections of CONNECTIONS) {
    for (let round = 1; round <= ROUNDS; round++) {
      step(`small GET, ${connections} connection(s), round ${round}/${ROUNDS}`);
      for (const path of ['direct', 'tunnel'] as const) samples.push(await sample(gen, s, path, connections, SECONDS));
    }
  }

  step('100 MB download, direct and tunnel alternating');
  const down = await transfers(s, download);
  step('100 MB upload, direct and tunnel alternating');
  const up = await transfers(s, upload);

  const rss = await openRss(s, idle);
  // As many pairs as before the burst: its median is compared with theirs.
  const afterBurst: Sample[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    step(`small GET, 50 connections, after the exchanges held open ended, round ${round}/${ROUNDS}`);
    for (const path of ['direct', 'tunnel'] as const) afterBurst.push(await sample(gen, s, path, 50, SECONDS));
  }

  const report: Report = {
    meta: {
      generator: gen,
      seconds: SECONDS,
      rounds: ROUNDS,
      node: process.version,
      cpus: CPUS,
      loadAvgAtStart,
      bulkBytes: BULK_BYTES,
      date: new Date().toISOString(),
    },
    small: CONNECTIONS.map((c) => summariseSmall(samples, c)),
    download: down,
    upload: up,
    rss,
    afterBurst,
    warnings: { relay: s.relay.warnings, agent: s.agent.warnings },
    samples,
  };
  process.stdout.write(formatReport(report));
  const json = process.env.BENCH_JSON;
  if (json) {
    writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
    step(`figures written to ${json}`);
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench FAILED: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAndWait();
}
