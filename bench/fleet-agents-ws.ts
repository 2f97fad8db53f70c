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
 * Started with one JSON argument and reporting to the parent as
 * bench/fleet-agents-run.ts says.
 */
import { WebSocket } from 'ws';
import { HEARTBEAT_DEFAULTS } from '../src/config/common.js';
import { retryAfterDelayMs } from '../src/http/retry-after.js';
import { MuxSession } from '../src/mux/session.js';
import { PROTOCOL_VERSION, SUBPROTOCOL } from '../src/protocol.js';
import { args, counts, FleetAgent, runFleetAgents } from './fleet-agents-run.js';

// The agent's defaults (agent.yaml without heartbeat:).
const HEARTBEAT = args.heartbeat ?? HEARTBEAT_DEFAULTS;

class WsFleetAgent extends FleetAgent {
  private isReady = false;

  constructor(
    private readonly index: number,
    private readonly token: string,
  ) {
    super();
  }

  dial(onSettled?: () => void): void {
    const settle = this.dialStarted(onSettled);
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
      if (res.statusCode === 503) counts.busy++;
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
        counts.ready++;
        this.backoff.reset();
        settle();
      });
      session.once('close', () => {
        if (this.isReady) counts.ready--;
        else counts.failures++;
        this.isReady = false;
        settle();
        this.redial();
      });
      session.sendControl({ type: 'hello', version: PROTOCOL_VERSION, tunnels: [`f${this.index}`], software: 'fleet-bench', hostname: 'bench', window: 256 * 1024 });
    });
    ws.once('close', () => {
      if (opened) return; // the session's 'close' handles it
      // Refused or reset before the upgrade finished.
      counts.failures++;
      if (!answered) counts.refused++;
      settle();
      this.redial(retryAfter);
    });
  }
}

void runFleetAgents((index, token) => new WsFleetAgent(index, token));
