/**
 * Bench figures: per-run samples, their summary, the printed table and the
 * JSON document (BENCH_JSON).
 */
import type { GcCounts } from './children.js';
import type { LoadResult } from './load.js';

export type PathName = 'direct' | 'tunnel';
export type ProcName = 'backend' | 'relay' | 'agent';
export type Cpu = Record<ProcName, number>;

/** One load run: its result and the CPU seconds each process used meanwhile. */
export interface Sample {
  path: PathName;
  connections: number;
  load: LoadResult;
  cpuS: Cpu;
  /**
   * CPU used meanwhile by processes other than backend, relay, agent, the
   * bench and wrk, in % of the machine (all CPUs): how noisy the run was.
   */
  otherCpuPct: number;
  /** What relay and agent GCs did during the run (their --trace-gc-nvp lines). */
  gc: { relay: GcCounts; agent: GcCounts };
}

export interface PathSummary {
  runs: number;
  /** Median req/s over the runs, and ± half their range in % of it. */
  rps: number;
  spreadPct: number;
  rpsRuns: number[];
  /** Medians over the runs. */
  p50Ms: number;
  p99Ms: number;
  /** CPU µs per request: CPU time over all runs / requests over all runs. */
  cpuUsPerRequest: Cpu;
}

export interface SmallSummary {
  connections: number;
  direct: PathSummary;
  tunnel: PathSummary;
  /** tunnel req/s / direct req/s. */
  ratio: number;
  addedP50Ms: number;
  addedP99Ms: number;
  /** Relay and agent CPU per request over the backend's CPU per request in the tunnel runs. */
  relayVsBackend: number;
  agentVsBackend: number;
}

export interface Bulk {
  direct: number;
  tunnel: number;
  ratio: number;
  directRuns: number[];
  tunnelRuns: number[];
  /** CPU used by other processes during these transfers, in % of the machine (see Sample). */
  otherCpuPct: number;
}

export interface Rss {
  exchanges: number;
  /** Fresh processes, before any load. */
  relayIdleMiB: number;
  agentIdleMiB: number;
  /** Just before the exchanges were opened (after the load runs). */
  relayBeforeMiB: number;
  agentBeforeMiB: number;
  relayOpenMiB: number;
  agentOpenMiB: number;
}

export interface Meta {
  generator: string;
  seconds: number;
  rounds: number;
  node: string;
  cpus: number;
  loadAvgAtStart: number[];
  bulkBytes: number;
  date: string;
}

export interface Report {
  meta: Meta;
  small: SmallSummary[];
  download: Bulk;
  upload: Bulk;
  rss: Rss;
  /** Direct and tunnel runs at 50 connections after the exchanges held open ended (as many pairs as rounds). */
  afterBurst: Sample[];
  warnings: Record<string, number>;
  samples: Sample[];
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
/** The median; one run disturbed by another process moves it less than the mean. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function summarisePath(samples: Sample[]): PathSummary {
  const rpsRuns = samples.map((s) => s.load.rps);
  const rps = median(rpsRuns);
  const requests = sum(samples.map((s) => s.load.requests));
  const cpu = (p: ProcName): number => (sum(samples.map((s) => s.cpuS[p])) / requests) * 1e6;
  return {
    runs: samples.length,
    rps,
    spreadPct: ((Math.max(...rpsRuns) - Math.min(...rpsRuns)) / 2 / rps) * 100,
    rpsRuns,
    p50Ms: median(samples.map((s) => s.load.p50Ms)),
    p99Ms: median(samples.map((s) => s.load.p99Ms)),
    cpuUsPerRequest: { backend: cpu('backend'), relay: cpu('relay'), agent: cpu('agent') },
  };
}

export function summariseSmall(samples: Sample[], connections: number): SmallSummary {
  const of = (path: PathName): PathSummary => summarisePath(samples.filter((s) => s.connections === connections && s.path === path));
  const direct = of('direct');
  const tunnel = of('tunnel');
  const b = tunnel.cpuUsPerRequest.backend;
  return {
    connections,
    direct,
    tunnel,
    ratio: tunnel.rps / direct.rps,
    addedP50Ms: tunnel.p50Ms - direct.p50Ms,
    addedP99Ms: tunnel.p99Ms - direct.p99Ms,
    relayVsBackend: tunnel.cpuUsPerRequest.relay / b,
    agentVsBackend: tunnel.cpuUsPerRequest.agent / b,
  };
}

export function bulk(direct: number[], tunnel: number[], otherCpuPct: number): Bulk {
  const d = Math.max(...direct);
  const t = Math.max(...tunnel);
  return { direct: d, tunnel: t, ratio: t / d, directRuns: direct, tunnelRuns: tunnel, otherCpuPct };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => `${n.toFixed(Math.abs(n) < 10 ? 2 : 1)} ms`;
const us = (n: number): string => `${n.toFixed(n < 10 ? 1 : 0)} µs`;
const mib = (n: number): string => `${n.toFixed(1)} MiB`;
const times = (n: number): string => `${n.toFixed(1)}×`;
const LABEL = 27;
const row = (label: string, text: string): string => `${label.padEnd(LABEL)}${text}`;

function smallRows(s: SmallSummary): string[] {
  const label = `small GET, ${s.connections} connection${s.connections === 1 ? '' : 's'}`;
  const { direct: d, tunnel: t } = s;
  return [
    row(label, `direct ${int(d.rps)} req/s (±${d.spreadPct.toFixed(0)}%)  tunnel ${int(t.rps)} req/s (±${t.spreadPct.toFixed(0)}%)  ratio ${s.ratio.toFixed(3)}`),
    row('', `p50 direct ${ms(d.p50Ms)}  tunnel ${ms(t.p50Ms)} (added ${ms(s.addedP50Ms)})   p99 direct ${ms(d.p99Ms)}  tunnel ${ms(t.p99Ms)} (added ${ms(s.addedP99Ms)})`),
    row('', `runs (req/s): direct ${d.rpsRuns.map(int).join(', ')}; tunnel ${t.rpsRuns.map(int).join(', ')}`),
  ];
}

function cpuRow(s: SmallSummary): string {
  const d = s.direct.cpuUsPerRequest;
  const t = s.tunnel.cpuUsPerRequest;
  return row(
    `CPU per request (${s.connections} conn)`,
    `backend ${us(d.backend)} direct / ${us(t.backend)} tunnel; relay ${us(t.relay)} (${times(s.relayVsBackend)}); agent ${us(t.agent)} (${times(s.agentVsBackend)})`,
  );
}

const bulkRow = (label: string, b: Bulk): string =>
  row(label, `direct ${int(b.direct)} MB/s  tunnel ${int(b.tunnel)} MB/s  ratio ${b.ratio.toFixed(2)}`);

/** Bytes promoted per request and full GCs per run, relay and agent, over tunnel runs. */
function gcText(runs: Sample[]): string {
  const requests = sum(runs.map((x) => x.load.requests));
  const side = (p: 'relay' | 'agent'): string => {
    const promoted = sum(runs.map((x) => x.gc[p].promoted)) / requests;
    const full = runs.map((x) => x.gc[p].full).join(', ');
    return `${p} ${int(promoted)} B, full GCs ${full}`;
  };
  return `${side('relay')}; ${side('agent')}`;
}

/**
 * GC of the 50-connection tunnel runs before and after the burst: bytes
 * promoted to the old generation per request (tens normally; 3-4 KB when
 * dead requests are kept alive through young GCs) and full GCs per run.
 */
function gcRow(r: Report): string {
  const before = r.samples.filter((x) => x.path === 'tunnel' && x.connections === 50);
  const after = r.afterBurst.filter((x) => x.path === 'tunnel');
  if (!before.length || !after.length) return row('GC (tunnel, 50 conn)', 'not measured');
  return row('GC (tunnel, 50 conn)', `promoted per request before: ${gcText(before)} | after ${int(r.rss.exchanges)} open: ${gcText(after)}`);
}

/** The 50-connection runs after the burst of open exchanges (medians), against the tunnel's median before it. */
function afterBurstRow(r: Report): string {
  const before = r.small.find((x) => x.connections === 50);
  const directRuns = r.afterBurst.filter((x) => x.path === 'direct');
  const tunnelRuns = r.afterBurst.filter((x) => x.path === 'tunnel');
  if (!directRuns.length || !tunnelRuns.length || !before) return row(`after ${int(r.rss.exchanges)} open`, 'not measured');
  const direct = summarisePath(directRuns);
  const tunnel = summarisePath(tunnelRuns);
  const cpu = (p: 'relay' | 'agent'): string =>
    `${us(tunnel.cpuUsPerRequest[p])} (${((tunnel.cpuUsPerRequest[p] / before.tunnel.cpuUsPerRequest[p] - 1) * 100).toFixed(0)}%)`;
  return row(
    `after ${int(r.rss.exchanges)} open`,
    `50 connections: direct ${int(direct.rps)} req/s, tunnel ${int(tunnel.rps)} req/s (ratio ${(tunnel.rps / direct.rps).toFixed(3)}, ` +
      `${((tunnel.rps / before.tunnel.rps - 1) * 100).toFixed(0)}% against before; runs ${tunnel.rpsRuns.map(int).join(', ')}); ` +
      `relay ${cpu('relay')}, agent ${cpu('agent')} per request`,
  );
}

export function formatReport(r: Report): string {
  const m = r.meta;
  // Over idle, not over 'after the load runs': that figure still holds the
  // load runs' garbage, which a GC may free while the exchanges open. So an
  // upper bound: it includes what the load runs left (compiled code, pools).
  const perExchange = (idle: number, open: number): string => `at most ${(((open - idle) * 1024) / r.rss.exchanges).toFixed(1)} KiB each over idle`;
  const n = int(r.rss.exchanges);
  const mb = r.meta.bulkBytes / 1e6;
  const lines = [
    `ctbridge bench — ${m.generator}, ${m.seconds} s per run, median of ${m.rounds} runs per path, Node ${m.node}, ${m.cpus} CPUs, load avg ${m.loadAvgAtStart.map((x) => x.toFixed(2)).join(' ')} at start`,
    ...r.small.flatMap(smallRows),
    ...r.small.map(cpuRow),
    bulkRow(`${mb} MB download`, r.download),
    bulkRow(`${mb} MB upload`, r.upload),
    row(
      'RSS',
      `relay ${mib(r.rss.relayIdleMiB)} idle, ${mib(r.rss.relayBeforeMiB)} after the load runs, ${mib(r.rss.relayOpenMiB)} with ${n} open exchanges (${perExchange(r.rss.relayIdleMiB, r.rss.relayOpenMiB)}); ` +
        `agent ${mib(r.rss.agentIdleMiB)} idle, ${mib(r.rss.agentBeforeMiB)} after the load runs, ${mib(r.rss.agentOpenMiB)} with ${n} (${perExchange(r.rss.agentIdleMiB, r.rss.agentOpenMiB)})`,
    ),
    afterBurstRow(r),
    gcRow(r),
  ];
  const others = r.samples.map((s) => s.otherCpuPct);
  const worst = Math.max(...others, r.download.otherCpuPct, r.upload.otherCpuPct);
  lines.push(
    row(
      'other processes',
      `${mean(others).toFixed(1)}% of the ${m.cpus} CPUs on average during the load runs, ${Math.max(...others).toFixed(0)}% in the worst run; ` +
        `${r.download.otherCpuPct.toFixed(0)}% during the downloads, ${r.upload.otherCpuPct.toFixed(0)}% during the uploads` +
        `${worst > 5 ? ' (noisy: compare with care)' : ''}`,
    ),
  );
  const warned = Object.entries(r.warnings).filter(([, count]) => count > 0);
  if (warned.length) lines.push(row('warn/error log lines', warned.map(([name, count]) => `${name} ${count}`).join(', ')));
  lines.push(
    `(± half the range of the runs; ratio = tunnel/direct; CPU × = relay or agent µs per request over the backend's in the tunnel runs, ` +
      `target ≤ 2.5×; MB = 10^6 bytes, best of ${r.download.directRuns.length}, one connection` +
      `${m.generator === 'autocannon' ? '; autocannon latencies are whole milliseconds' : ''})`,
  );
  return `${lines.join('\n')}\n`;
}
