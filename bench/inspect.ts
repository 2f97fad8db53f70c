/**
 * `npm run bench:inspect`: what the inspector costs. One stack (backend,
 * relay, agent: bench/stack.ts); small-GET runs alternate between
 * `inspect: off` and the inspector on (then on with `bodies: 16KiB`), the
 * switch made by rewriting both config files and reloading (SIGHUP), so
 * the same processes are compared with themselves. The CPU time relay and
 * agent spent is read from /proc around each run: on a shared machine
 * requests per second are noisy, CPU microseconds per request compared
 * within the same processes much less so (separate stacks differed by
 * ±20% from each other with identical configs).
 *
 *   BENCH_SECONDS      seconds per run (default 6)
 *   BENCH_ROUNDS       runs per setting (default 6)
 *   BENCH_CONNECTIONS  concurrent connections (default 10)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { parse, stringify } from 'yaml';
import { cleanupAndWait } from './children.js';
import { envInt } from './env.js';
import { pickGenerator, runLoad } from './load.js';
import { cpuSeconds } from './proc.js';
import { startStack, type Stack } from './stack.js';

const SECONDS = envInt('BENCH_SECONDS', 6, 1);
const ROUNDS = envInt('BENCH_ROUNDS', 6, 1);
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 10, 1);

const SETTINGS: { name: string; inspect: unknown }[] = [
  { name: 'inspect: off', inspect: 'off' },
  { name: 'inspector (default)', inspect: {} },
  { name: 'inspector, bodies 16KiB', inspect: { bodies: '16KiB' } },
];

interface Run {
  rps: number;
  relayUs: number;
  agentUs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Rewrites both configs with `inspect` and reloads; resolves once both admin listeners show the change. */
async function apply(stack: Stack, admin: { relay: number; agent: number }, inspect: unknown): Promise<void> {
  for (const file of [stack.relayYaml, stack.agentYaml]) {
    const config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    config.inspect = inspect;
    writeFileSync(file, stringify(config));
  }
  process.kill(stack.relay.pid, 'SIGHUP');
  process.kill(stack.agent.pid, 'SIGHUP');
  const want = inspect === 'off' ? 404 : 200;
  for (const port of [admin.relay, admin.agent]) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port}/api/exchanges?limit=1`);
      await r.text();
      if (r.status === want) break;
      if (Date.now() > deadline) throw new Error(`the reload to inspect: ${JSON.stringify(inspect)} did not show on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function measure(stack: Stack, gen: ReturnType<typeof pickGenerator>): Promise<Run> {
  const r0 = cpuSeconds(stack.relay.pid);
  const a0 = cpuSeconds(stack.agent.pid);
  const load = await runLoad(gen, `${stack.tunnelUrl}/small`, CONNECTIONS, SECONDS);
  const relay = cpuSeconds(stack.relay.pid) - r0;
  const agent = cpuSeconds(stack.agent.pid) - a0;
  return { rps: load.rps, relayUs: (relay * 1e6) / load.requests, agentUs: (agent * 1e6) / load.requests };
}

async function main(): Promise<void> {
  const gen = pickGenerator();
  const admin = { relay: await freePort(), agent: await freePort() };
  const stack = await startStack({
    relay: { admin: { listen: `127.0.0.1:${admin.relay}` }, inspect: 'off' },
    agent: { admin: { listen: `127.0.0.1:${admin.agent}` }, inspect: 'off' },
  });
  process.stderr.write('bench: warm-up\n');
  await runLoad(gen, `${stack.tunnelUrl}/small`, CONNECTIONS, 5);
  const runs: Run[][] = SETTINGS.map(() => []);
  for (let round = 1; round <= ROUNDS; round++) {
    for (let j = 0; j < SETTINGS.length; j++) {
      const i = (j + round - 1) % SETTINGS.length;
      process.stderr.write(`bench: round ${round}/${ROUNDS}, ${SETTINGS[i].name}\n`);
      await apply(stack, admin, SETTINGS[i].inspect);
      runs[i].push(await measure(stack, gen));
    }
  }
  const total = (r: Run): number => r.relayUs + r.agentUs;
  const base = median(runs[0].map(total));
  const lines = [`small GET, ${CONNECTIONS} connections, ${ROUNDS} x ${SECONDS} s per setting, ${gen}, same processes (reloaded between runs); medians`, ''];
  lines.push('setting                    req/s   relay us/req  agent us/req  total us/req  CPU vs off');
  for (const [i, v] of SETTINGS.entries()) {
    const t = median(runs[i].map(total));
    lines.push(`${v.name.padEnd(25)} ${median(runs[i].map((r) => r.rps)).toFixed(0).padStart(6)} ${median(runs[i].map((r) => r.relayUs)).toFixed(1).padStart(13)} ${median(runs[i].map((r) => r.agentUs)).toFixed(1).padStart(13)} ${t.toFixed(1).padStart(13)}  ${((t / base - 1) * 100).toFixed(1).padStart(6)}%`);
  }
  lines.push('', 'each run (total us/req), in round order:');
  for (const [i, v] of SETTINGS.entries()) lines.push(`  ${v.name.padEnd(25)} ${runs[i].map((r) => total(r).toFixed(1)).join('  ')}`);
  // Paired: each round's on/off ratio, since neighbours' load changes between rounds.
  const paired = runs[1].map((r, k) => total(r) / total(runs[0][k]) - 1);
  lines.push('', `paired per round, default vs off: ${paired.map((p) => `${(p * 100).toFixed(1)}%`).join('  ')}; median ${(median(paired) * 100).toFixed(1)}%`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench FAILED: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanupAndWait();
}
