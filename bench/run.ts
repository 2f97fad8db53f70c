/**
 * `npm run bench`: sample backend, relay and agent on loopback; the same
 * measurements direct and through the tunnel, in one run, with ratios.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { stringify } from 'yaml';
import { signAgentToken } from '../src/token.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'bench-secret-0123456789abcdef-0123456789';
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const children: ChildProcess[] = [];

function start(args: string[], waitFor: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = out.match(waitFor);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.resume(); // keep draining logs
        resolve({ child, match: m });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)));
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** RSS once it stops moving (three samples 200 ms apart within 1 MiB), or after 3 s. */
async function settledRss(pid: number): Promise<number> {
  let prev = rssMiB(pid);
  for (let i = 0, stable = 0; i < 15 && stable < 2; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = rssMiB(pid);
    stable = Math.abs(now - prev) < 1 ? stable + 1 : 0;
    prev = now;
  }
  return prev;
}

async function load(url: string): Promise<{ rps: number; p50: number; p99: number }> {
  const r = await autocannon({ url, connections: 50, duration: DURATION, pipelining: 1 });
  if (r.non2xx || r.errors) throw new Error(`load on ${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    let bytes = 0;
    http
      .get(url, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve(bytes / 1048576 / (Number(process.hrtime.bigint() - t) / 1e9)));
      })
      .on('error', reject);
  });
}

async function bestOf(n: number, f: () => Promise<number>): Promise<number> {
  let best = 0;
  for (let i = 0; i < n; i++) best = Math.max(best, await f());
  return best;
}

async function holdStreams(base: string, n: number): Promise<http.ClientRequest[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  return Promise.all(
    Array.from({ length: n }, (_, i) => new Promise<http.ClientRequest>((resolve, reject) => {
      const req = http.get(`${base}/hold?i=${i}`, { agent }, () => resolve(req));
      req.on('error', reject);
    })),
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-'));
  const backend = await start(['--import', 'tsx', 'bench/backend.ts'], /^(\d+)\n/);
  const backendUrl = `http://127.0.0.1:${backend.match[1]}`;
  const relayYaml = join(dir, 'relay.yaml');
  writeFileSync(relayYaml, stringify({ listen: '127.0.0.1:0', auth: { secret: SECRET }, limits: { maxStreamsPerAgent: 5000 }, tunnels: { bench: {} } }));
  const relay = await start(['bin/ctbridge.js', 'relay', '--config', relayYaml], /"msg":"relay listening".*?"listen":"127\.0\.0\.1:(\d+)"|"listen":"127\.0\.0\.1:(\d+)".*?"msg":"relay listening"/);
  const relayPort = relay.match[1] ?? relay.match[2];
  const token = await signAgentToken({ agentId: 'bench', tunnels: ['bench'], ttlMs: 3600_000, key: { secret: SECRET } });
  const agentYaml = join(dir, 'agent.yaml');
  writeFileSync(agentYaml, stringify({ relay: `ws://127.0.0.1:${relayPort}`, token, limits: { maxStreams: 5000 }, tunnels: { bench: { target: backendUrl } } }));
  const agent = await start(['bin/ctbridge.js', 'agent', '--config', agentYaml], /"msg":"tunnel ready"/);
  const tunnelUrl = `http://127.0.0.1:${relayPort}/t/bench`;
  const plain = await start(['--import', 'tsx', 'bench/plain-proxy.ts', backendUrl], /^(\d+)\n/);
  const plainUrl = `http://127.0.0.1:${plain.match[1]}`;

  process.stderr.write(`relay :${relayPort}, agent ready, backend ${backendUrl}; measuring...\n`);
  const step = (what: string) => process.stderr.write(`  ${what}\n`);
  step('idle streams');
  // Measured first, on fresh processes, so bulk-transfer buffers do not blur it.
  const one = await holdStreams(tunnelUrl, 1);
  const rss1 = await settledRss(relay.child.pid!);
  const many = await holdStreams(tunnelUrl, 999);
  const rss1000 = await settledRss(relay.child.pid!);
  const agentRss1000 = rssMiB(agent.child.pid!);
  for (const req of [...one, ...many]) req.destroy();

  // Warm-up both paths.
  await autocannon({ url: `${backendUrl}/small`, connections: 10, duration: 2 });
  await autocannon({ url: `${tunnelUrl}/small`, connections: 10, duration: 2 });

  step('load: direct');
  const direct = await load(`${backendUrl}/small`);
  step('load: one plain http-proxy-3 hop');
  const oneHop = await load(`${plainUrl}/small`);
  step('load: tunnel');
  const tunnel = await load(`${tunnelUrl}/small`);
  step('bulk download');
  const size = 100 * 1024 * 1024;
  const directMBs = await bestOf(3, () => download(`${backendUrl}/download?bytes=${size}`));
  const tunnelMBs = await bestOf(3, () => download(`${tunnelUrl}/download?bytes=${size}`));


  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)}%`;
  const lines = [
    `ctbridge bench (${DURATION}s per load run, 50 connections, ~${300}-byte XML GET; Node ${process.version})`,
    '',
    `small GET     direct  ${direct.rps.toFixed(0).padStart(7)} req/s  p50 ${direct.p50.toFixed(2)} ms  p99 ${direct.p99.toFixed(2)} ms`,
    `              tunnel  ${tunnel.rps.toFixed(0).padStart(7)} req/s  p50 ${tunnel.p50.toFixed(2)} ms  p99 ${tunnel.p99.toFixed(2)} ms`,
    `              ratio   ${pct(tunnel.rps, direct.rps)} of direct req/s, added p50 ${(tunnel.p50 - direct.p50).toFixed(2)} ms, added p99 ${(tunnel.p99 - direct.p99).toFixed(2)} ms`,
    `  reference: one plain http-proxy-3 hop ${oneHop.rps.toFixed(0)} req/s (${pct(oneHop.rps, direct.rps)} of direct), p50 ${oneHop.p50.toFixed(2)} ms; the tunnel does two such hops plus the multiplexer`,
    `100 MB GET    direct  ${directMBs.toFixed(0).padStart(7)} MB/s`,
    `              tunnel  ${tunnelMBs.toFixed(0).padStart(7)} MB/s`,
    `              ratio   ${pct(tunnelMBs, directMBs)} of direct MB/s`,
    `relay RSS     ${rss1.toFixed(1)} MiB with 1 idle stream, ${rss1000.toFixed(1)} MiB with 1,000 idle streams (${(((rss1000 - rss1) * 1024) / 999).toFixed(1)} KiB per stream); agent ${agentRss1000.toFixed(1)} MiB with 1,000`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill('SIGKILL');
  });
