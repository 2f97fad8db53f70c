/**
 * `node --import tsx bench/inspect.ts` (after `npm run build`): what the
 * inspector costs. Three stacks (backend, relay, agent: bench/stack.ts) run
 * side by side, `inspect: off`, the default inspector, and the inspector
 * with `bodies: 16KiB`; small-GET runs alternate between them, and the CPU
 * time relay and agent spent is read from /proc around each run. On a
 * shared machine requests per second are noisy; CPU microseconds per
 * request, compared within the same run, are the figure to read.
 *
 *   BENCH_SECONDS      seconds per run (default 8)
 *   BENCH_ROUNDS       runs per stack (default 4)
 *   BENCH_CONNECTIONS  concurrent connections (default 50)
 */
import { cleanupAndWait } from './children.js';
import { envInt } from './env.js';
import { pickGenerator, runLoad } from './load.js';
import { cpuSeconds } from './proc.js';
import { startStack, type Stack } from './stack.js';

const SECONDS = envInt('BENCH_SECONDS', 8, 1);
const ROUNDS = envInt('BENCH_ROUNDS', 4, 1);
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 50, 1);
const ADMIN = { admin: { listen: '127.0.0.1:0' } };

const VARIANTS: { name: string; inspect: unknown }[] = [
  { name: 'inspect: off', inspect: 'off' },
  { name: 'inspector (default)', inspect: {} },
  { name: 'inspector, bodies 16KiB', inspect: { bodies: '16KiB' } },
];

interface Run {
  requests: number;
  rps: number;
  relayUs: number;
  agentUs: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function measure(stack: Stack, gen: ReturnType<typeof pickGenerator>, seconds: number): Promise<Run> {
  const r0 = cpuSeconds(stack.relay.pid);
  const a0 = cpuSeconds(stack.agent.pid);
  const load = await runLoad(gen, `${stack.tunnelUrl}/small`, CONNECTIONS, seconds);
  const relay = cpuSeconds(stack.relay.pid) - r0;
  const agent = cpuSeconds(stack.agent.pid) - a0;
  return { requests: load.requests, rps: load.rps, relayUs: (relay * 1e6) / load.requests, agentUs: (agent * 1e6) / load.requests };
}

async function main(): Promise<void> {
  const gen = pickGenerator();
  const stacks: Stack[] = [];
  for (const v of VARIANTS) {
    process.stderr.write(`bench: starting the stack with ${v.name}\n`);
    stacks.push(await startStack({ relay: { ...ADMIN, inspect: v.inspect }, agent: { ...ADMIN, inspect: v.inspect } }));
  }
  for (const [i, s] of stacks.entries()) {
    process.stderr.write(`bench: warm-up, ${VARIANTS[i].name}\n`);
    await runLoad(gen, `${s.tunnelUrl}/small`, CONNECTIONS, 3);
  }
  const runs: Run[][] = VARIANTS.map(() => []);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [i, s] of stacks.entries()) {
      process.stderr.write(`bench: round ${round}/${ROUNDS}, ${VARIANTS[i].name}\n`);
      runs[i].push(await measure(s, gen, SECONDS));
    }
  }
  const base = median(runs[0].map((r) => r.relayUs + r.agentUs));
  const baseRps = median(runs[0].map((r) => r.rps));
  const lines = [`small GET, ${CONNECTIONS} connections, ${ROUNDS} x ${SECONDS} s per variant, ${gen}; medians`, ''];
  lines.push('variant                    req/s   relay us/req  agent us/req  total us/req  vs off');
  for (const [i, v] of VARIANTS.entries()) {
    const rps = median(runs[i].map((r) => r.rps));
    const relay = median(runs[i].map((r) => r.relayUs));
    const agent = median(runs[i].map((r) => r.agentUs));
    const total = median(runs[i].map((r) => r.relayUs + r.agentUs));
    lines.push(`${v.name.padEnd(25)} ${rps.toFixed(0).padStart(6)} ${relay.toFixed(1).padStart(13)} ${agent.toFixed(1).padStart(13)} ${total.toFixed(1).padStart(13)}  ${((total / base - 1) * 100).toFixed(1).padStart(5)}% CPU, ${((rps / baseRps - 1) * 100).toFixed(1)}% req/s`);
  }
  lines.push('', 'each run (total us/req):');
  for (const [i, v] of VARIANTS.entries()) lines.push(`  ${v.name.padEnd(25)} ${runs[i].map((r) => (r.relayUs + r.agentUs).toFixed(1)).join('  ')}`);
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
