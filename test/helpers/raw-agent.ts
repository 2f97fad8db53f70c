/**
 * A hand-driven agent for hostile-peer tests: a real WebSocket to the
 * relay's agent endpoint that sends whatever frames a test writes, well
 * formed or not, and records what the relay sends back.
 */
import { WebSocket } from 'ws';
import { decodeFrames, encodeHeader, encodeJson, FLAG_END, FrameType, HEADER_SIZE, type Frame } from '../../src/mux/frame.js';
import { PROTOCOL_VERSION, SUBPROTOCOL } from '../../src/protocol.js';

export interface RawFrame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
  json?: unknown;
}

export class RawAgent {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { match: (f: RawFrame) => boolean; resolve: (f: RawFrame) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      try {
        decodeFrames(data, (f: Frame) => this.record(f));
      } catch {
        // a relay that sends garbage fails the test through missing frames
      }
    });
  }

  /** Connects with `token`, offering `protocol` (default the current one; null offers none, like a version 1 agent). */
  static connect(relayUrl: string, token: string, protocol: string | null = SUBPROTOCOL): Promise<RawAgent> {
    const url = `${relayUrl.replace(/^http/, 'ws')}/_ctbridge/agent`;
    const ws = protocol === null
      ? new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
      : new WebSocket(url, [protocol], { headers: { authorization: `Bearer ${token}` } });
    const agent = new RawAgent(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(agent));
      ws.once('error', reject);
    });
  }

  /** Says hello for `tunnels` and waits for ready. */
  async hello(tunnels: string[], fields: Record<string, unknown> = {}): Promise<RawFrame> {
    this.control({ type: 'hello', version: PROTOCOL_VERSION, tunnels, software: 'raw-agent', hostname: 'test', window: 256 * 1024, ...fields });
    return this.waitFor((f) => f.type === FrameType.CONTROL && (f.json as { type?: string })?.type === 'ready');
  }

  control(message: unknown): void {
    this.send(Buffer.concat(encodeJson(FrameType.CONTROL, 0, 0, message)));
  }

  reply(id: number, status: number, headers: string[], end = false): void {
    this.send(Buffer.concat(encodeJson(FrameType.REPLY, end ? FLAG_END : 0, id, { status, headers })));
  }

  data(id: number, payload: Buffer | string, end = false): void {
    const body = Buffer.from(payload);
    this.send(Buffer.concat([encodeHeader(FrameType.DATA, end ? FLAG_END : 0, id, body.length), body]));
  }

  window(id: number, increment: number): void {
    const frame = Buffer.alloc(HEADER_SIZE + 4);
    frame[0] = FrameType.WINDOW;
    frame.writeUInt32BE(id, 2);
    frame.writeUInt32BE(4, 6);
    frame.writeUInt32BE(increment, 10);
    this.send(frame);
  }

  /** Any bytes as one binary WebSocket message. */
  send(bytes: Buffer): void {
    this.ws.send(bytes, { binary: true });
  }

  /** The first frame (past or future) that matches. */
  waitFor(match: (f: RawFrame) => boolean, timeoutMs = 10_000): Promise<RawFrame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${this.frames.map((f) => `${f.type}/${f.id}`).join(' ')}`)), timeoutMs);
      this.waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
    });
  }

  /** The next OPEN the relay sends (a public request for one of our tunnels). */
  nextOpen(after = 0): Promise<RawFrame> {
    return this.waitFor((f) => f.type === FrameType.OPEN && f.id > after);
  }

  close(): void {
    this.ws.terminate();
  }

  private record(f: Frame): void {
    const frame: RawFrame = { type: f.type, flags: f.flags, id: f.id, payload: Buffer.from(f.payload) };
    if (f.type !== FrameType.DATA && f.type !== FrameType.WINDOW) {
      try {
        frame.json = JSON.parse(frame.payload.toString('utf8'));
      } catch {
        // not JSON: left undefined
      }
    }
    this.frames.push(frame);
    this.waiters = this.waiters.filter((w) => (w.match(frame) ? (w.resolve(frame), false) : true));
  }
}
