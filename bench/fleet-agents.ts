/**
 * One child process of `npm run bench:fleet`: `count` simulated agents, each
 * with its own agent id, token and tunnel, that connect to the relay, say
 * hello, and then sit idle the way a real agent does. They stand in for
 * agents on machines of their own, so they are built to cost this machine
 * as little as possible while sending the relay exactly what an agent sends
 * (bench/fleet-ws-client.ts): raw TCP sockets, the agent's upgrade request
 * and token, its hello message, and its liveness (src/mux/heartbeat.ts, the
 * agent's class with the default timings: a ping every interval while idle,
 * pongs to the relay's pings, the link dropped after `timeout` of silence).
 * A dropped link is redialled with the agent's full-jitter backoff
 * (src/backoff.ts, 500 ms to 10 s), a busy relay's Retry-After jittered
 * instead (src/http/retry-after.ts), and a dial bounded by the agent's
 * `timeouts.connect` (10 s) up to the 101 and again up to ready, so a relay
 * restart gives the same storm as real agents.
 *
 * What they do not do: open exchanges (the relay sends none to idle agents:
 * any other frame than CONTROL is a protocol error here), TLS or proxies,
 * reading a refusal's body (the agent reads at most a little of it for its
 * log line), or keeping a MuxSession. BENCH_FLEET_SIMULATOR=ws runs the
 * previous simulator (bench/fleet-agents-ws.ts: ws + MuxSession per agent)
 * for an A/B.
 *
 * Started with one JSON argument and reporting to the parent as
 * bench/fleet-agents-run.ts says.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { HEARTBEAT_DEFAULTS } from '../src/config/common.js';
import { retryAfterDelayMs } from '../src/http/retry-after.js';
import { decodeFrames, encodeJson, FrameType, parseJsonPayload } from '../src/mux/frame.js';
import { Heartbeat } from '../src/mux/heartbeat.js';
import { PROTOCOL_VERSION, SOFTWARE_VERSION, SUBPROTOCOL } from '../src/protocol.js';
import { args, counts, FleetAgent, runFleetAgents } from './fleet-agents-run.js';
import { acceptFor, clientFrame, FrameReader, Opcode, PING_FRAME, readUpgradeAnswer, upgradeRequest } from './fleet-ws-client.js';

const url = new URL(args.url);
const port = Number(url.port);
// The agent's defaults (agent.yaml without heartbeat:, timeouts:, reconnect:, streamWindow:).
const HEARTBEAT = args.heartbeat ?? HEARTBEAT_DEFAULTS;
const CONNECT_TIMEOUT_MS = 10_000;
const WINDOW = 256 * 1024;
// ws draws a new key per dial; the relay's work (one SHA-1 of it) is the same for any key.
const KEY = randomBytes(16).toString('base64');
const ACCEPT = acceptFor(KEY);

class SimulatedAgent extends FleetAgent {
  private readonly request: Buffer;
  private readonly hello: Buffer;

  constructor(index: number, token: string) {
    super();
    this.request = upgradeRequest({ path: url.pathname, host: url.host, token, userAgent: SOFTWARE_VERSION, subprotocol: SUBPROTOCOL, key: KEY });
    // What agent/relay-messages.ts helloMessage() says, as one binary message (the session sends each control message whole).
    const hello = { type: 'hello', version: PROTOCOL_VERSION, tunnels: [`f${index}`], software: SOFTWARE_VERSION, hostname: 'bench', window: WINDOW };
    this.hello = clientFrame(Opcode.BINARY, Buffer.concat(encodeJson(FrameType.CONTROL, 0, 0, hello)));
  }

  dial(onSettled?: () => void): void {
    const settle = this.dialStarted(onSettled);
    let state: 'upgrading' | 'open' | 'ready' = 'upgrading';
    let answered = false;
    let retryAfter: number | undefined;
    let head: Buffer | null = null;
    let heartbeat: Heartbeat | undefined;
    const socket = net.connect({ port, host: url.hostname, noDelay: true });
    // timeouts.connect bounds the dial up to the 101, then the wait for ready.
    let timer: NodeJS.Timeout | undefined = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
    const reader = new FrameReader((opcode, payload) => {
      if (opcode === Opcode.PING) socket.write(clientFrame(Opcode.PONG, payload));
      else if (opcode === Opcode.CLOSE) {
        // Answer the closing handshake with the relay's code, then let the relay close the TCP connection.
        socket.end(clientFrame(Opcode.CLOSE, payload.subarray(0, 2)));
      } else if (opcode === Opcode.BINARY) {
        decodeFrames(payload, (frame) => {
          if (frame.type !== FrameType.CONTROL) throw new Error(`unexpected frame type ${frame.type} for an idle agent`);
          const m = parseJsonPayload(frame) as { type?: unknown } | undefined;
          if (m?.type === 'ready' && state === 'open') {
            state = 'ready';
            clearTimeout(timer);
            timer = undefined;
            counts.ready++;
            this.backoff.reset();
            settle();
          }
        });
      }
    });
    socket.on('connect', () => socket.write(this.request));
    socket.on('data', (chunk: Buffer) => {
      if (state !== 'upgrading') {
        heartbeat?.seen(Date.now());
        let problem: string | undefined;
        try {
          problem = reader.push(chunk);
        } catch (err) {
          problem = (err as Error).message;
        }
        if (problem) socket.destroy();
        return;
      }
      head = head ? Buffer.concat([head, chunk]) : chunk;
      const answer = readUpgradeAnswer(head, ACCEPT, SUBPROTOCOL);
      if (answer.kind === 'partial') return;
      answered = true;
      head = null;
      if (answer.kind === 'refused') {
        if (answer.status === 503) {
          counts.busy++;
          retryAfter = retryAfterDelayMs(answer.retryAfter);
        }
        socket.destroy();
        return;
      }
      if (answer.kind === 'bad') {
        socket.destroy();
        return;
      }
      state = 'open';
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
      // As MuxSession: the heartbeat starts with the session, before the hello.
      heartbeat = new Heartbeat(true, HEARTBEAT, {
        ping: () => void socket.write(PING_FRAME),
        dead: () => socket.destroy(),
        busy: () => false,
        backlogged: () => false,
      });
      socket.write(this.hello);
      if (answer.rest.length > 0) socket.emit('data', answer.rest);
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      heartbeat?.stop();
      if (state === 'ready') counts.ready--;
      else counts.failures++;
      if (state === 'upgrading' && !answered) counts.refused++;
      settle();
      // A busy relay's Retry-After only for a refused upgrade; otherwise the backoff.
      this.redial(state === 'upgrading' ? retryAfter : undefined);
    });
  }
}

void runFleetAgents((index, token) => new SimulatedAgent(index, token));
