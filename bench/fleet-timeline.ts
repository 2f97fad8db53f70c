/**
 * A per-second timeline of `npm run bench:fleet`'s reconnect storm (or
 * ramp-up): what the agents did (admitted, dials, 503 CTB_RELAY_BUSY,
 * refused connections, asleep in backoff) and where the CPU went (relay,
 * the agent simulators, this bench, everything else on the machine), read
 * from /proc every second. It shows whether the relay is the bottleneck
 * (near 100% of a core) or idle while agents sleep.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { cpuSeconds, machineCpuSeconds } from './proc.js';

export interface FleetCounts {
  ready: number;
  dials: number;
  busy: number;
  refused: number;
  waiting: number;
}

export interface TimelineRow {
  /** When sampled: ms since the epoch until stop(), then seconds since the timeline's zero (the new relay listening). */
  t: number;
  ready: number;
  admitted: number;
  dials: number;
  busy: number;
  refused: number;
  /** Agents asleep before their next dial at the end of the second. */
  waiting: number;
  /**
   * Connections the kernel dropped because a listen queue was full
   * (TcpExt ListenDrops, machine-wide): those peers wait for a SYN(-ACK)
   * retransmission, 1 s and more.
   */
  listenDrops: number;
  /** SYNs retransmitted (TcpExt TCPSynRetrans, machine-wide). */
  synRetrans: number;
  /** CPU in % of one core over the second. */
  relayCpu: number;
  agentsCpu: number;
  benchCpu: number;
  otherCpu: number;
  load1: number;
}

interface Sample {
  at: number;
  counts: FleetCounts;
  relayPid: number | undefined;
  relay: number;
  agents: number;
  bench: number;
  machine: number;
  tcp: Record<string, number>;
}

/** TcpExt counters of /proc/net/netstat (this network namespace). */
function tcpExt(): Record<string, number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length < 2) return {};
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

const safeCpu = (pid: number | undefined): number => {
  if (pid === undefined) return 0;
  try {
    return cpuSeconds(pid);
  } catch {
    return 0; // exited
  }
};

export class Timeline {
  readonly rows: TimelineRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private prev: Sample;
  /** Where t = 0 is (ms since the epoch); rows before it have negative t. */
  zero: number;

  constructor(
    private readonly counts: () => FleetCounts,
    private readonly relayPid: () => number | undefined,
    private readonly agentPids: readonly number[],
  ) {
    this.prev = this.sample();
    this.zero = this.prev.at;
  }

  private sample(): Sample {
    const relayPid = this.relayPid();
    const u = process.cpuUsage();
    return {
      at: Date.now(),
      counts: this.counts(),
      relayPid,
      relay: safeCpu(relayPid),
      agents: this.agentPids.reduce((n, p) => n + safeCpu(p), 0),
      bench: (u.user + u.system) / 1e6,
      machine: machineCpuSeconds(),
      tcp: tcpExt(),
    };
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick(): void {
    const now = this.sample();
    const p = this.prev;
    const secs = (now.at - p.at) / 1000;
    if (secs <= 0) return;
    const pct = (cpu: number): number => Math.round((cpu / secs) * 100);
    // A new relay process counts its CPU from 0.
    const relay = now.relayPid === p.relayPid ? now.relay - p.relay : now.relay;
    const agents = now.agents - p.agents;
    const bench = now.bench - p.bench;
    this.rows.push({
      t: now.at,
      ready: now.counts.ready,
      admitted: now.counts.ready - p.counts.ready,
      dials: now.counts.dials - p.counts.dials,
      busy: now.counts.busy - p.counts.busy,
      refused: now.counts.refused - p.counts.refused,
      waiting: now.counts.waiting,
      listenDrops: (now.tcp.ListenDrops ?? 0) - (p.tcp.ListenDrops ?? 0),
      synRetrans: (now.tcp.TCPSynRetrans ?? 0) - (p.tcp.TCPSynRetrans ?? 0),
      relayCpu: pct(relay),
      agentsCpu: pct(agents),
      benchCpu: pct(bench),
      otherCpu: pct(Math.max(0, now.machine - p.machine - relay - agents - bench)),
      load1: Math.round(loadavg()[0] * 100) / 100,
    });
    this.prev = now;
  }

  /** Seconds from zero, one decimal. */
  private t(r: TimelineRow): number {
    return Math.round((r.t - this.zero) / 100) / 10;
  }

  /** Stops sampling; the rows with t in seconds from zero. */
  stop(): TimelineRow[] {
    clearInterval(this.timer);
    this.tick();
    for (const r of this.rows) r.t = this.t(r);
    this.zero = 0;
    return this.rows;
  }

  /** The rows as an aligned text table (stderr), after stop(). */
  format(): string {
    const cols: (keyof TimelineRow)[] = ['t', 'ready', 'admitted', 'dials', 'busy', 'refused', 'waiting', 'listenDrops', 'synRetrans', 'relayCpu', 'agentsCpu', 'benchCpu', 'otherCpu', 'load1'];
    const lines = [cols.map((c) => c.padStart(c.length + 1)).join('')];
    for (const r of this.rows) lines.push(cols.map((c) => String(r[c]).padStart(c.length + 1)).join(''));
    return lines.join('\n');
  }
}
