/**
 * `npm run bench:cluster`: relay nodes as a cluster on loopback, each part
 * its own process, in one run:
 *
 * 1. Forwarded vs direct. Agent `solo` knows only node A's URL. A GET to
 *    node A reaches the agent directly; the same GET to node B is forwarded
 *    by B to A. One connection (added latency) and 50 (throughput), the two
 *    alternating.
 * 2. Three nodes vs one behind HAProxy (Debian package; skipped without
 *    it). Two independent setups side by side: HAProxy → one node, and
 *    HAProxy → three nodes; an agent for tunnel `bench` behind each knows
 *    only its HAProxy URL (so it ends up on every node). wrk at 50
 *    connections through each, alternating, and direct to the backend.
 *
 *   BENCH_SECONDS, BENCH_ROUNDS, BENCH_GENERATOR, BENCH_JSON as for bench/run.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { signAgentToken } from '../src/token.js';
import { haproxyConfig } from '../test/helpers/haproxy-config.js';
import { cleanupAndWait, killOnCleanup, spawnNode, tempDir, type Child } from './children.js';
import { envInt } from './env.js';
import { pickGenerator, runLoad, type Generator, type LoadResult } from './load.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'bench-secret-0123456789abcdef-0123456789';
const CLUSTER_SECRET = 'bench-cluster-secret-0123456789abcdef-01';

const SECONDS = envInt('BENCH_SECONDS', 10, 1);
const ROUNDS = envInt('BENCH_ROUNDS', 3, 2);

const step = (what: string): void => void process.stderr.write(`bench cluster: ${what}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface Node {
  name: string;
  port: number;
  adminPort: number;
  clusterPort: number;
  child?: Child;
}

async function startNode(n: Node, peers: Node[], dir: string): Promise<void> {
  const file = join(dir, `${n.name}.yaml`);
  writeFileSync(file, stringify({
    listen: `127.0.0.1:${n.port}`,
    auth: { secret: SECRET },
    log: { level: 'warn' },
    limits: { maxStreamsPerAgent: 5000 },
    admin: { listen: `127.0.0.1:${n.adminPort}` },
    cluster: { nodeId: n.name, listen: `127.0.0.1:${n.clusterPort}`, secret: CLUSTER_SECRET, peers: { static: peers.map((p) => `127.0.0.1:${p.clusterPort}`), refresh: '1s' } },
    tunnels: { bench: {}, solo: {} },
  }));
  n.child = spawnNode(n.name, ['bin/ctbridge.js', 'relay', '--config', file], ROOT);
  await waitReady(n);
}

async function waitReady(n: Node): Promise<void> {
  for (let i = 0; i < 200; i++) {
    n.child!.assertAlive();
    const r = await fetch(`http://127.0.0.1:${n.adminPort}/readyz`).catch(() => undefined);
    if (r?.status === 200) return;
    await sleep(100);
  }
  throw new Error(`${n.name} not ready within 20 s`);
}

async function startAgent(name: string, relayUrl: string, tunnel: string, backendUrl: string, dir: string): Promise<Child> {
  const token = await signAgentToken({ agentId: name, tunnels: [tunnel], ttlMs: 24 * 3600_000, key: { secret: SECRET } });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({
    relay: relayUrl.replace('http', 'ws'),
    token,
    log: { level: 'warn' },
    limits: { maxStreams: 5000 },
    admin: { listen: 'off' },
    tunnels: { [tunnel]: { target: backendUrl } },
  }));
  return spawnNode(name, ['bin/ctbridge.js', 'agent', '--config', file], ROOT);
}

/** Until `n` nodes' /api/status list `agent` (an agent behind a load balancer spreads over the nodes). */
async function agentOnNodes(nodes: Node[], agent: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const on = await Promise.all(nodes.map(async (n) => {
      const s = await (await fetch(`http://127.0.0.1:${n.adminPort}/api/status`)).json() as { agents: { agentId: string; draining: boolean }[] };
      return s.agents.some((a) => a.agentId === agent && !a.draining);
    }));
    if (on.every(Boolean)) return;
    await sleep(100);
  }
  throw new Error(`${agent} did not reach ${nodes.map((n) => n.name).join(', ')} within 30 s`);
}

async function answers(url: string): Promise<boolean> {
  const r = await fetch(url).catch(() => undefined);
  return r?.status === 200 && (await r.text()).includes('ZZZ00123');
}

async function startHaproxy(nodes: Node[], dir: string): Promise<string> {
  const [port] = await freePorts(1);
  const conf = join(dir, `haproxy-${port}.cfg`);
  writeFileSync(conf, haproxyConfig(port, nodes));
  const proc = spawn('haproxy', ['-db', '-f', conf], { stdio: 'ignore' });
  killOnCleanup(proc);
  return `http://127.0.0.1:${port}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Series {
  name: string;
  runs: LoadResult[];
}

async function alternate(gen: Generator, paths: { name: string; url: string }[], connections: number): Promise<Series[]> {
  const series = paths.map((p) => ({ name: p.name, runs: [] as LoadResult[] }));
  for (const p of paths) await runLoad(gen, p.url, connections, Math.min(3, SECONDS)); // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    step(`${connections} connection(s), round ${round}/${ROUNDS}`);
    for (const [i, p] of paths.entries()) {
      const r = await runLoad(gen, p.url, connections, SECONDS);
      series[i].runs.push(r);
      step(`  ${p.name}: ${Math.round(r.rps)} req/s, p50 ${r.p50Ms.toFixed(2)} ms`);
    }
  }
  return series;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const summary = (s: Series) => ({ rps: median(s.runs.map((r) => r.rps)), p50Ms: median(s.runs.map((r) => r.p50Ms)), p99Ms: median(s.runs.map((r) => r.p99Ms)) });

async function main(): Promise<void> {
  const gen = pickGenerator();
  const dir = tempDir();
  const backend = spawnNode('backend', ['--import', 'tsx', 'bench/backend.ts'], ROOT);
  const portLine = await backend.waitForLine((l) => l.unparsed === true && /^\d+$/.test(String(l.msg)));
  const backendUrl = `http://127.0.0.1:${String(portLine.msg)}`;

  const ports = await freePorts(12);
  const nodes: Node[] = ['node-a', 'node-b', 'node-c', 'node-x'].map((name, i) => ({ name, port: ports[3 * i], adminPort: ports[3 * i + 1], clusterPort: ports[3 * i + 2] }));
  const trio = nodes.slice(0, 3);
  const [a, b] = trio;
  const alone = nodes[3];
  step('starting three clustered nodes and one alone');
  await Promise.all([...trio.map((n) => startNode(n, trio, dir)), startNode(alone, [alone], dir)]);
  const url = (n: Node) => `http://127.0.0.1:${n.port}`;

  // 1. Forwarded vs direct: agent solo knows only node A.
  await startAgent('solo', url(a), 'solo', backendUrl, dir);
  await agentOnNodes([a], 'solo');
  for (let i = 0; i < 100 && !(await answers(`${url(b)}/t/solo/small`)); i++) await sleep(100);
  const hop = [
    { name: 'agent on the node called', url: `${url(a)}/t/solo/small` },
    { name: 'forwarded by another node', url: `${url(b)}/t/solo/small` },
  ];
  const hop1 = await alternate(gen, hop, 1);
  const hop50 = await alternate(gen, hop, 50);

  // 2. Three nodes vs one, each behind its own HAProxy.
  let scale: Series[] | undefined;
  if (spawnSync('haproxy', ['-v']).status === 0) {
    const lb3 = await startHaproxy(trio, dir);
    const lb1 = await startHaproxy([alone], dir);
    await startAgent('bench-3', lb3, 'bench', backendUrl, dir);
    await startAgent('bench-1', lb1, 'bench', backendUrl, dir);
    await Promise.all([agentOnNodes(trio, 'bench-3'), agentOnNodes([alone], 'bench-1')]);
    scale = await alternate(gen, [
      { name: 'direct to the backend', url: `${backendUrl}/small` },
      { name: 'HAProxy → 1 node', url: `${lb1}/t/bench/small` },
      { name: 'HAProxy → 3 nodes', url: `${lb3}/t/bench/small` },
    ], 50);
  } else {
    step('haproxy not installed: three nodes vs one skipped (apt-get install haproxy)');
  }

  const [near1, far1] = hop1.map(summary);
  const [near50, far50] = hop50.map(summary);
  const lines = [
    `ctbridge bench, relay cluster — ${gen}, ${SECONDS} s per run, median of ${ROUNDS}, Node ${process.version}`,
    `forwarded exchange, 1 connection   agent on the node called ${fmt(near1.rps)} req/s, p50 ${near1.p50Ms.toFixed(2)} ms; forwarded ${fmt(far1.rps)} req/s, p50 ${far1.p50Ms.toFixed(2)} ms (added ${(far1.p50Ms - near1.p50Ms).toFixed(2)} ms)`,
    `forwarded exchange, 50 connections agent on the node called ${fmt(near50.rps)} req/s; forwarded ${fmt(far50.rps)} req/s (ratio ${(far50.rps / near50.rps).toFixed(2)})`,
  ];
  let scaleSummary: Record<string, ReturnType<typeof summary>> | undefined;
  if (scale) {
    const [direct, one, three] = scale.map(summary);
    scaleSummary = { direct, one, three };
    lines.push(`3 nodes vs 1, 50 connections       direct ${fmt(direct.rps)} req/s; HAProxy → 1 node ${fmt(one.rps)} req/s; HAProxy → 3 nodes ${fmt(three.rps)} req/s (3 vs 1: ${(three.rps / one.rps).toFixed(2)}); all processes share ${(await import('node:os')).availableParallelism()} CPUs`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ forwarded: { c1: { near: near1, far: far1 }, c50: { near: near50, far: far50 } }, scale: scaleSummary, runs: { hop1, hop50, scale } }, null, 2));
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench cluster failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAndWait());
