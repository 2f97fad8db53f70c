/**
 * `npm run bench:fleet`: one relay process and N raw agents (bench/fleet-agents.ts,
 * spread over child processes), on loopback. Figures on stdout, progress on
 * stderr:
 *
 * - admission: how fast N agents connect, say hello and get ready (at most
 *   BENCH_FLEET_RAMP dials in flight per child), and the relay's CPU time per
 *   admitted agent;
 * - relay RSS per agent (after N agents, minus before any);
 * - relay CPU while idle, read from /proc/<pid>/stat over BENCH_FLEET_IDLE_SECONDS;
 * - reconnect storm: the relay is SIGKILLed and started again on the same
 *   port; the time until every agent is ready again (from the kill, and from
 *   the new relay accepting connections).
 *
 *   BENCH_FLEET_AGENTS        agents (default: the open-file limit minus 1,000)
 *   BENCH_FLEET_PER_CHILD     agents per child process (default 5,000)
 *   BENCH_FLEET_RAMP          dials in flight per child during the ramp-up (default 200)
 *   BENCH_FLEET_IDLE_SECONDS  idle CPU window (default: two heartbeat intervals, 60 s; the agents connect within a few
 *                             seconds, so their pings come in bursts every interval, and a window that is not a
 *                             multiple of it holds one burst or two)
 *   BENCH_FLEET_IDLE_SETTLE_SECONDS  wait at least this long after the ramp-up before the idle window (default 30: V8 is
 *                             still collecting what the admissions left; reported apart as relayCpuPercentWhileSettling),
 *                             and until V8's memory reducer has run (up to three full GCs, seconds apart, 10-60 s after the
 *                             allocation rate drops at the end of the ramp-up) and QUIET_GC_SECONDS passed without a full
 *                             GC; at most MAX_SETTLE_SECONDS
 *   BENCH_FLEET_STORM_SECONDS how long to wait for every agent after the restart (default 120; 0 skips the restart)
 *   BENCH_FLEET_AGENTS_NICE   the simulators' nice value (default 5: they get the CPU the relay leaves, as agents
 *                             on other machines would; 0: the same priority as the relay)
 *   BENCH_FLEET_HEARTBEAT_INTERVAL  seconds: another heartbeat.interval for relay and simulators (timeout: twice it)
 *   BENCH_FLEET_SIMULATOR     ws: the previous simulated agents (ws + MuxSession each, bench/fleet-agents-ws.ts) instead of
 *                             the raw-socket ones (bench/fleet-agents.ts), for an A/B of what the relay sees
 *   BENCH_FLEET_RELAY_DIR     run the relay of another (built) checkout: an A/B against an older version
 *   BENCH_JSON                also write the figures as JSON to this file
 *   BENCH_PROFILE             a directory: the last relay (the restarted one, or with BENCH_FLEET_STORM_SECONDS=0 the
 *                             first) writes a V8 CPU profile there when it is stopped with SIGTERM at the end
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { HEARTBEAT_DEFAULTS } from '../src/config/common.js';
import { cleanupAndWait, killOnCleanup, spawnNode, tempDir, type Child } from './children.js';
import { envInt } from './env.js';
import type { FleetAgentsArgs, FleetAgentsReport } from './fleet-agents-run.js';
import { Timeline } from './fleet-timeline.js';
import { cpuSeconds, cpuSplit, machineCpuSeconds, machineStealSeconds, selfAndReapedCpuSeconds, settledRss } from './proc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'bench-secret-0123456789abcdef-0123456789';

function openFileLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  } catch {
    return 1024;
  }
}

const AGENTS = envInt('BENCH_FLEET_AGENTS', Math.max(100, openFileLimit() - 1000), 1);
const PER_CHILD = envInt('BENCH_FLEET_PER_CHILD', 5000, 1);
const RAMP = envInt('BENCH_FLEET_RAMP', 200, 1);
const IDLE_SETTLE_SECONDS = envInt('BENCH_FLEET_IDLE_SETTLE_SECONDS', 30, 0);
/** The idle window starts only once the relay has done no full GC for this long (see BENCH_FLEET_IDLE_SETTLE_SECONDS). */
const QUIET_GC_SECONDS = 20;
const MAX_SETTLE_SECONDS = 120;
const STORM_SECONDS = envInt('BENCH_FLEET_STORM_SECONDS', 120, 0);
const AGENTS_NICE = envInt('BENCH_FLEET_AGENTS_NICE', 5, 0);
/** Another checkout whose relay to measure (built; for an A/B against an older version). */
const RELAY_DIR = process.env.BENCH_FLEET_RELAY_DIR || ROOT;
/**
 * Another heartbeat interval (seconds) than the default, for relay and simulators alike; the timeout is then twice it
 * (the relay pings a link silent for 1.5 intervals, and the peer keeps as long to answer as with the defaults).
 */
const HEARTBEAT_S = envInt('BENCH_FLEET_HEARTBEAT_INTERVAL', 0, 0);
const HEARTBEAT = HEARTBEAT_S ? { interval: HEARTBEAT_S * 1000, timeout: HEARTBEAT_S * 2000 } : undefined;
const IDLE_SECONDS = envInt('BENCH_FLEET_IDLE_SECONDS', (2 * (HEARTBEAT ?? HEARTBEAT_DEFAULTS).interval) / 1000, 1);
/** The simulated agents: raw sockets (default), or `ws` + MuxSession per agent (the previous simulator, for an A/B). */
const SIMULATOR = process.env.BENCH_FLEET_SIMULATOR === 'ws' ? 'bench/fleet-agents-ws.ts' : 'bench/fleet-agents.ts';

const step = (what: string): void => void process.stderr.write(`bench:fleet: ${what}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startRelay(yaml: string, port: number): Promise<Child> {
  // BENCH_PROFILE=<dir>: the relay writes a V8 CPU profile there when it exits (SIGTERM at the end; a SIGKILLed relay writes none).
  const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  // --trace-gc-nvp: one line per GC, counted by Child (bench/children.ts), to tell GC apart in the idle window.
  const relay = spawnNode('relay', [...prof, '--trace-gc-nvp', 'bin/ctbridge.js', 'relay', '--config', yaml], RELAY_DIR);
  const deadline = Date.now() + 30_000;
  while (!(await tcpOpen(port))) {
    relay.assertAlive();
    if (Date.now() > deadline) throw new Error('relay not listening within 30 s');
    await sleep(20);
  }
  return relay;
}

interface AgentChild {
  proc: ChildProcess;
  report: FleetAgentsReport;
  signed: Promise<void>;
}

function startAgents(url: string, from: number, count: number): AgentChild {
  const a: FleetAgentsArgs = { url, secret: SECRET, from, count, rampConcurrency: RAMP, ...(HEARTBEAT ? { heartbeat: HEARTBEAT } : {}) };
  const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', SIMULATOR, JSON.stringify(a)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  killOnCleanup(proc);
  agentChildren.push(proc);
  // In production every agent has its own machine; here the simulators share the relay's two cores. At a lower
  // priority they take only what the relay leaves, as agents elsewhere would (BENCH_FLEET_AGENTS_NICE=0: same priority).
  if (AGENTS_NICE && proc.pid !== undefined) setPriority(proc.pid, AGENTS_NICE);
  const child: AgentChild = { proc, report: { ready: 0, dialling: 0, failures: 0, dials: 0, busy: 0, refused: 0, waiting: 0 }, signed: Promise.resolve() };
  child.signed = new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`agent child exited with ${code}`)));
    proc.on('message', (m: FleetAgentsReport & { tokens?: number }) => {
      child.report = m;
      if (m.tokens !== undefined) resolve();
    });
  });
  return child;
}

const total = (children: AgentChild[], key: keyof FleetAgentsReport): number => children.reduce((n, c) => n + c.report[key], 0);

/** Resolves with the time when `cond` first held (polled every 20 ms); throws after `ms`. */
async function until(cond: () => boolean, ms: number, what: string, progress: () => string): Promise<number> {
  const deadline = Date.now() + ms;
  let lastLog = Date.now();
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms / 1000} s: ${progress()}`);
    if (Date.now() - lastLog > 2000) {
      step(progress());
      lastLog = Date.now();
    }
    await sleep(20);
  }
  return Date.now();
}

async function main(): Promise<void> {
  const dir = tempDir();
  const port = await freePort();
  const yaml = join(dir, 'relay.yaml');
  writeFileSync(yaml, stringify({ listen: `127.0.0.1:${port}`, auth: { secret: SECRET }, log: { level: 'warn' }, admin: { listen: 'off' },
    ...(HEARTBEAT ? { heartbeat: { interval: `${HEARTBEAT.interval}ms`, timeout: `${HEARTBEAT.timeout}ms` } } : {}) }));
  step(`${AGENTS} agents, ${Math.ceil(AGENTS / PER_CHILD)} child processes; relay on port ${port}`);
  let relay = await startRelay(yaml, port);
  const [rssBefore] = await settledRss([relay.pid]);

  const children: AgentChild[] = [];
  for (let from = 0; from < AGENTS; from += PER_CHILD) children.push(startAgents(`ws://127.0.0.1:${port}/_ctbridge/agent`, from, Math.min(PER_CHILD, AGENTS - from)));
  await Promise.all(children.map((c) => c.signed));
  const progress = (): string => `ready ${total(children, 'ready')}/${AGENTS}, dialling ${total(children, 'dialling')}, failures ${total(children, 'failures')}`;

  const counts = () => ({
    ready: total(children, 'ready'), dials: total(children, 'dials'), busy: total(children, 'busy'),
    refused: total(children, 'refused'), waiting: total(children, 'waiting'),
  });
  const agentPids = children.map((c) => c.proc.pid!);
  const timeline = (): Timeline => new Timeline(counts, () => (relay.alive ? relay.pid : undefined), agentPids);

  step('ramp-up');
  const cpu0 = cpuSeconds(relay.pid);
  const agentsCpu0 = agentPids.reduce((n, p) => n + cpuSeconds(p), 0);
  const rampLine = timeline();
  const t0 = Date.now();
  rampLine.start();
  for (const c of children) c.proc.send({ go: true });
  const t1 = await until(() => total(children, 'ready') === AGENTS, 300_000, 'ramp-up', progress);
  const rampCpu = cpuSeconds(relay.pid) - cpu0;
  const rampAgentsCpu = agentPids.reduce((n, p) => n + cpuSeconds(p), 0) - agentsCpu0;
  rampLine.stop();
  step(`ramp-up, per second:\n${rampLine.format()}`);
  const admissionPerSecond = AGENTS / ((t1 - t0) / 1000);
  const rampFailures = total(children, 'failures');
  step(`all ${AGENTS} ready in ${((t1 - t0) / 1000).toFixed(1)} s`);

  await sleep(5000);
  const [rssAfter] = await settledRss([relay.pid]);
  const rssPerAgentKiB = ((rssAfter - rssBefore) * 1024) / AGENTS;
  Object.assign(report, {
    agents: AGENTS,
    childProcesses: children.length,
    admission: {
      seconds: (t1 - t0) / 1000, perSecond: Math.round(admissionPerSecond), relayCpuMsPerAgent: (rampCpu * 1000) / AGENTS,
      simulatorsCpuMsPerAgent: (rampAgentsCpu * 1000) / AGENTS, failedDials: rampFailures, loadavg1m: loadavg()[0],
    },
    relayRss: { beforeMiB: rssBefore, afterMiB: rssAfter, perAgentKiB: rssPerAgentKiB },
  });

  // Right after the ramp-up V8 still collects what the admissions left (full GCs of a heap of a few hundred MiB, about a
  // second of CPU in all): a one-off, not the cost of idling. The window starts after it.
  step(`settling for at least ${IDLE_SETTLE_SECONDS} s, until V8's memory reducer has run (at most ${MAX_SETTLE_SECONDS} s); then idle for ${IDLE_SECONDS} s`);
  const settle0 = cpuSeconds(relay.pid);
  const settleGc0 = { ...relay.gc };
  const settleStart = Date.now();
  await sleep(IDLE_SETTLE_SECONDS * 1000);
  // The memory reducer's full GCs after the ramp-up (two or three: 0.5-1.8 s of the relay's CPU at 15,000 agents, much of it on V8's helper
  // threads) are a one-off of the load dropping, not the cost of idling; in a 40 s window they doubled the figure in
  // some runs and not in others. They are counted while settling; any full GC in the window still counts in it.
  // They come 10-60 s after the ramp-up: wait for them (a full GC to reduce memory since the ramp-up, then
  // QUIET_GC_SECONDS without any full GC), for at most MAX_SETTLE_SECONDS.
  const reducerDone = (): boolean => relay.gc.reduceMemory > settleGc0.reduceMemory && Date.now() - relay.lastFullGcAt >= QUIET_GC_SECONDS * 1000;
  while (!reducerDone() && Date.now() - settleStart < Math.max(MAX_SETTLE_SECONDS, IDLE_SETTLE_SECONDS) * 1000) await sleep(500);
  const settleSeconds = (Date.now() - settleStart) / 1000;
  const settleCpuPercent = ((cpuSeconds(relay.pid) - settle0) / settleSeconds) * 100;
  // Besides the relay's CPU: its GCs, and what else ran on the machine (other sessions, the hypervisor's steal), so a run
  // disturbed from outside can be told apart from one where the relay itself did more.
  const sample = () => ({
    relay: cpuSplit(relay.pid), gc: { ...relay.gc }, machine: machineCpuSeconds(), steal: machineStealSeconds(),
    agents: agentPids.reduce((n, p) => n + cpuSeconds(p), 0), bench: selfAndReapedCpuSeconds(),
  });
  const idle0 = sample();
  const load0 = loadavg()[0];
  await sleep(IDLE_SECONDS * 1000);
  const idle1 = sample();
  const idleUserPercent = ((idle1.relay.user - idle0.relay.user) / IDLE_SECONDS) * 100;
  const idleSystemPercent = ((idle1.relay.system - idle0.relay.system) / IDLE_SECONDS) * 100;
  const pct = (seconds: number): number => (seconds / IDLE_SECONDS) * 100;
  const relayIdleCpu = idle1.relay.user + idle1.relay.system - idle0.relay.user - idle0.relay.system;
  const idleCpuPercent = idleUserPercent + idleSystemPercent;
  const load1 = loadavg()[0];
  report.idle = {
    seconds: IDLE_SECONDS,
    settleSeconds,
    relayCpuPercentWhileSettling: settleCpuPercent,
    relayFullGcsWhileSettling: idle0.gc.full - settleGc0.full,
    relayFullGcsToReduceMemoryWhileSettling: idle0.gc.reduceMemory - settleGc0.reduceMemory,
    relayCpuPercentOfOneCore: idleCpuPercent,
    // The kernel's share: on loopback a pong's write also runs the simulator's receive path (about half of it).
    relayUserPercent: idleUserPercent,
    relaySystemPercent: idleSystemPercent,
    relayCpuUsPerAgentPerSecond: ((idleCpuPercent / 100) * 1e6) / AGENTS,
    relayGc: {
      scavenges: idle1.gc.scavenges - idle0.gc.scavenges, fullGcs: idle1.gc.full - idle0.gc.full, pauseMs: idle1.gc.pauseMs - idle0.gc.pauseMs,
      fullGcsToReduceMemory: idle1.gc.reduceMemory - idle0.gc.reduceMemory, outsidePauseMs: idle1.gc.outsidePauseMs - idle0.gc.outsidePauseMs,
    },
    simulatorsPercent: pct(idle1.agents - idle0.agents),
    otherProcessesPercent: pct(Math.max(0, idle1.machine - idle0.machine - relayIdleCpu - (idle1.agents - idle0.agents) - (idle1.bench - idle0.bench))),
    stealPercent: pct(idle1.steal - idle0.steal),
    agentsStillReady: total(children, 'ready'),
    loadavg1m: [load0, load1],
  };
  const g = report.idle as {
    relayGc: { scavenges: number; fullGcs: number; pauseMs: number; fullGcsToReduceMemory: number; outsidePauseMs: number }; otherProcessesPercent: number; stealPercent: number;
  };
  step(`idle: relay ${idleCpuPercent.toFixed(2)}% of a core (user ${idleUserPercent.toFixed(2)}, kernel ${idleSystemPercent.toFixed(2)}); its GCs: ${
    g.relayGc.scavenges} scavenges, ${g.relayGc.fullGcs} full (${g.relayGc.fullGcsToReduceMemory} to reduce memory), ${Math.round(g.relayGc.pauseMs)} ms paused, ${
    Math.round(g.relayGc.outsidePauseMs)} ms outside pauses; other processes ${
    g.otherProcessesPercent.toFixed(1)}%, steal ${g.stealPercent.toFixed(1)}%`);
  report.extrapolatedTo50k = { relayRssMiB: rssBefore + (rssPerAgentKiB * 50_000) / 1024, idleCpuPercentOfOneCore: (idleCpuPercent * 50_000) / AGENTS };

  if (STORM_SECONDS === 0) return;
  step('SIGKILL the relay, start it again');
  const stormLine = timeline();
  const stormAgents0 = agentPids.reduce((n, p) => n + cpuSeconds(p), 0);
  const before = counts();
  const killedAt = Date.now();
  stormLine.start();
  relay.kill();
  await relay.exited;
  relay = await startRelay(yaml, port);
  const listeningAt = Date.now();
  stormLine.zero = listeningAt;
  const atListening = counts();
  const cpuStorm0 = cpuSeconds(relay.pid);
  let back: number | undefined;
  try {
    back = await until(() => total(children, 'ready') === AGENTS, STORM_SECONDS * 1000, 'reconnect storm', progress);
  } catch (err) {
    step((err as Error).message);
  }
  const stormAgentsCpu = agentPids.reduce((n, p) => n + cpuSeconds(p), 0) - stormAgents0;
  const end = counts();
  stormLine.stop();
  step(`reconnect storm, per second (t from the new relay listening):\n${stormLine.format()}`);
  report.restart = {
    relayDownSeconds: (listeningAt - killedAt) / 1000,
    allBackSecondsFromKill: back === undefined ? null : (back - killedAt) / 1000,
    allBackSecondsFromListening: back === undefined ? null : (back - listeningAt) / 1000,
    readyAtEnd: total(children, 'ready'),
    relayCpuSeconds: cpuSeconds(relay.pid) - cpuStorm0,
    simulatorsCpuSeconds: stormAgentsCpu,
    dialsWhileDown: atListening.dials - before.dials,
    dialsAfterListening: end.dials - atListening.dials,
    busyAnswers: end.busy - atListening.busy,
    refusedAfterListening: end.refused - atListening.refused,
    loadavg1m: loadavg()[0],
    timeline: stormLine.rows,
  };
}

const agentChildren: ChildProcess[] = [];
const report: Record<string, unknown> = { cpus: availableParallelism(), relayDir: RELAY_DIR, simulator: SIMULATOR, agentsNice: AGENTS_NICE, heartbeat: HEARTBEAT ?? 'default' };

try {
  await main();
} finally {
  // Whatever was measured, even when a step failed.
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(report, null, 2));
  if (process.env.BENCH_PROFILE) {
    // The simulators exit on their own when the IPC channel closes, writing their profiles.
    const exited = agentChildren.map((p) => new Promise((r) => p.once('exit', r)));
    for (const p of agentChildren) if (p.connected) p.disconnect();
    await Promise.race([Promise.all(exited), sleep(15_000)]);
  }
  await cleanupAndWait();
}
