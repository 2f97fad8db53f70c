/**
 * What both fleet simulators share (bench/fleet-agents.ts, the raw-socket
 * one, and bench/fleet-agents-ws.ts, ws + MuxSession for an A/B): the
 * child's arguments and counters, an agent's dial bookkeeping and redial
 * (the agent's full-jitter backoff, or a busy relay's Retry-After), and the
 * child's main loop: sign the tokens, ramp up at most `rampConcurrency`
 * dials at once when the parent says go, report over IPC every 100 ms.
 */
import { Backoff } from '../src/backoff.js';
import { signAgentToken } from '../src/token.js';

export interface FleetAgentsArgs {
  url: string;
  secret: string;
  from: number;
  count: number;
  /** Dials in flight at once during the first ramp-up (later redials are not held back, as with real agents). */
  rampConcurrency: number;
  /** Another heartbeat than the agent's default (BENCH_FLEET_HEARTBEAT_INTERVAL); the relay gets the same. */
  heartbeat?: { interval: number; timeout: number };
}

export interface FleetAgentsReport {
  ready: number;
  dialling: number;
  failures: number;
  /** Dials started, so far. */
  dials: number;
  /** Dials answered 503 (CTB_RELAY_BUSY), so far. */
  busy: number;
  /** Dials that ended before any HTTP answer (connection refused or reset), so far. */
  refused: number;
  /** Agents asleep before their next dial (backoff or Retry-After), now. */
  waiting: number;
}

/** This child's agents, as the parent started it (one JSON argument). */
export const args = JSON.parse(process.argv[2] ?? '{}') as FleetAgentsArgs;

/** This child's counters, reported to the parent. */
export const counts: FleetAgentsReport = { ready: 0, dialling: 0, failures: 0, dials: 0, busy: 0, refused: 0, waiting: 0 };

export abstract class FleetAgent {
  protected readonly backoff = new Backoff(500, 10_000);

  abstract dial(onSettled?: () => void): void;

  /** Counts a dial begun; the function returned ends it (once) when it is ready or failed. */
  protected dialStarted(onSettled?: () => void): () => void {
    counts.dialling++;
    counts.dials++;
    let settled = false;
    return () => {
      if (settled) return;
      settled = true;
      counts.dialling--;
      onSettled?.();
    };
  }

  /** Dials again after `delayMs` (a busy relay's Retry-After), else after the backoff. */
  protected redial(delayMs?: number): void {
    counts.waiting++;
    setTimeout(() => {
      counts.waiting--;
      this.dial();
    }, delayMs ?? this.backoff.next());
  }
}

/** The child's main loop, with `make` building each simulated agent from its index and token. */
export async function runFleetAgents(make: (index: number, token: string) => FleetAgent): Promise<void> {
  const agents: FleetAgent[] = [];
  for (let i = args.from; i < args.from + args.count; i++) {
    const token = await signAgentToken({ agentId: `fleet-${i}`, tunnels: [`f${i}`], ttlMs: 24 * 3600_000, key: { secret: args.secret } });
    agents.push(make(i, token));
  }
  setInterval(() => process.send?.({ ...counts }), 100);
  process.send?.({ ...counts, tokens: agents.length });
  // Ramp-up: at most rampConcurrency dials in flight.
  let next = 0;
  let ramping = true;
  const more = (): void => {
    while (ramping && next < agents.length && counts.dialling < args.rampConcurrency) agents[next++].dial(more);
    if (next >= agents.length) ramping = false;
  };
  process.on('message', (m: { go?: boolean }) => {
    if (m.go) more();
  });
  process.on('disconnect', () => process.exit(0));
}
