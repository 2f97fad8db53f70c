/**
 * The previous simulator of `npm run bench:fleet` (BENCH_FLEET_SIMULATOR=ws; the
 * default is bench/fleet-agents.ts, the same behaviour on raw sockets at a
 * fraction of the CPU): `count` raw agents, each with
 * its own agent id, token and tunnel, that connect to the relay, say hello,
 * and then sit idle the way a real agent does (src/mux/session.ts with the
 * default heartbeat; ping answers are automatic). A dropped connection is
 * redialled with the agent's full-jitter backoff (src/backoff.ts, defaults
 * 500 ms to 10 s), so a relay restart gives the same storm as real agents.
 *
 * Started with one JSON argument (FleetAgentsArgs); reports to the parent
 * over IPC every 100 ms (FleetAgentsReport).
 */
import { WebSocket } from 'ws';
import { Backoff } from '../src/backoff.js';
import { HEARTBEAT_DEFAULTS } from '../src/config/common.js';
import { retryAfterDelayMs } from '../src/http/retry-after.js';
import { MuxSession } from '../src/mux/session.js';
import { PROTOCOL_VERSION, SUBPROTOCOL } from '../src/protocol.js';
import { signAgentToken } from '../src/token.js';
import type { FleetAgentsArgs, FleetAgentsReport } from './fleet-agents.js';

const args = JSON.parse(process.argv[2]) as FleetAgentsArgs;
// The agent's defaults (agent.yaml without heartbeat:).
const HEARTBEAT = args.heartbeat ?? HEARTBEAT_DEFAULTS;

let ready = 0;
let dialling = 0;
let failures = 0;
let dials = 0;
let busy = 0;
let refused = 0;
let waiting = 0;
let ramping = true;

class RawFleetAgent {
  private readonly backoff = new Backoff(500, 10_000);
  private isReady = false;

  constructor(
    private readonly index: number,
    private readonly token: string,
  ) {}

  dial(onSettled?: () => void): void {
    dialling++;
    dials++;
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      dialling--;
      onSettled?.();
    };
    const ws = new WebSocket(args.url, [SUBPROTOCOL], {
      perMessageDeflate: false,
      generateMask: () => undefined,
      handshakeTimeout: 10_000,
      headers: { authorization: `Bearer ${this.token}` },
    });
    ws.on('error', () => undefined);
    // As the agent does (agent/relay-connection.ts): a busy relay's Retry-After, jittered, instead of the growing backoff.
    let retryAfter: number | undefined;
    let answered = false;
    ws.on('unexpected-response', (_req, res) => {
      answered = true;
      if (res.statusCode === 503) busy++;
      if (res.statusCode === 503) retryAfter = retryAfterDelayMs(res.headers['retry-after']);
      res.resume();
      ws.terminate();
    });
    let opened = false;
    ws.once('open', () => {
      opened = true;
      const session = new MuxSession(ws, { role: 'agent', window: 256 * 1024, maxIncoming: 100, heartbeat: HEARTBEAT });
      session.on('control', (m) => {
        if (m.type !== 'ready' || this.isReady) return;
        this.isReady = true;
        ready++;
        this.backoff.reset();
        settle();
      });
      session.once('close', () => {
        if (this.isReady) ready--;
        else failures++;
        this.isReady = false;
        settle();
        this.redial();
      });
      session.sendControl({ type: 'hello', version: PROTOCOL_VERSION, tunnels: [`f${this.index}`], software: 'fleet-bench', hostname: 'bench', window: 256 * 1024 });
    });
    ws.once('close', () => {
      if (opened) return; // the session's 'close' handles it
      // Refused or reset before the upgrade finished.
      failures++;
      if (!answered) refused++;
      settle();
      this.redial(retryAfter);
    });
  }

  private redial(delayMs?: number): void {
    waiting++;
    setTimeout(() => {
      waiting--;
      this.dial();
    }, delayMs ?? this.backoff.next());
  }
}

async function main(): Promise<void> {
  const agents: RawFleetAgent[] = [];
  for (let i = args.from; i < args.from + args.count; i++) {
    const token = await signAgentToken({ agentId: `fleet-${i}`, tunnels: [`f${i}`], ttlMs: 24 * 3600_000, key: { secret: args.secret } });
    agents.push(new RawFleetAgent(i, token));
  }
  setInterval(() => {
    const report: FleetAgentsReport = { ready, dialling, failures, dials, busy, refused, waiting };
    process.send?.(report);
  }, 100);
  process.send?.({ ready, dialling, failures, dials, busy, refused, waiting, tokens: agents.length });
  // Ramp-up: at most rampConcurrency dials in flight.
  let next = 0;
  const more = (): void => {
    while (ramping && next < agents.length && dialling < args.rampConcurrency) agents[next++].dial(more);
    if (next >= agents.length) ramping = false;
  };
  process.on('message', (m: { go?: boolean }) => {
    if (m.go) more();
  });
  process.on('disconnect', () => process.exit(0));
}

void main();
