/**
 * A multiplexed session over one WebSocket. Both ends run the same class
 * (frp style: client and server mirror each other); they differ only in the
 * parity of the stream ids they open (relay odd, agent even).
 *
 * Frames produced during one event-loop turn go out as one WebSocket message,
 * which keeps syscalls and WebSocket framing per request low under load.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { CtbridgeError, type ErrorCode } from '../errors.js';
import {
  decodeFrames,
  encodeEmpty,
  encodeHeader,
  encodeJson,
  encodeWindow,
  FrameType,
  parseJsonPayload,
  parseWindowPayload,
  type Frame,
} from './frame.js';
import { TunnelStream, type ResetInfo, type StreamSink } from './stream.js';

export interface SessionOptions {
  role: 'relay' | 'agent';
  /** Per-stream flow-control window in bytes. */
  window: number;
  /** Streams the peer may have open towards us at once; more are reset with CTB_AGENT_BUSY. */
  maxIncomingStreams: number;
  heartbeat: { interval: number; timeout: number };
}

/**
 * Flush at once when this much is queued: a full DATA frame then travels as
 * its own WebSocket message, which the receiver can hand on without a copy.
 */
const FLUSH_BYTES = 64 * 1024;
const MAX_STREAM_ID = 0xffff_ffff;

export interface MuxSessionEvents {
  stream: [stream: TunnelStream];
  control: [message: Record<string, unknown>];
  close: [code: number, reason: string];
}

export class MuxSession extends EventEmitter<MuxSessionEvents> implements StreamSink {
  readonly options: SessionOptions;
  private readonly ws: WebSocket;
  private readonly streams = new Map<number, TunnelStream>();
  private nextId: number;
  private incoming = 0;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private lastSeen = Date.now();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The peer's receive window: our initial send credit per stream. Set from the handshake. */
  private peerWindow: number;

  constructor(ws: WebSocket, options: SessionOptions) {
    super();
    this.ws = ws;
    this.options = options;
    this.nextId = options.role === 'relay' ? 1 : 2;
    this.peerWindow = options.window;
    ws.binaryType = 'nodebuffer';
    ws.on('message', this.onMessage);
    ws.on('pong', this.onAlive);
    ws.on('ping', this.onAlive);
    ws.on('close', this.onClose);
    ws.on('error', noop); // 'close' follows every error and carries the outcome
    this.startHeartbeat();
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Streams we opened that are still open (the relay's load figure for an agent). */
  get outgoingCount(): number {
    return this.streams.size - this.incoming;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Adopts the window the peer announced in the handshake (hello / ready), so
   * relay and agent may run with different `streamWindow` settings.
   */
  setPeerWindow(bytes: unknown): void {
    if (typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 16 * 1024 && bytes <= 16 * 1024 * 1024) this.peerWindow = bytes;
  }

  /** Opens a stream; data may be written at once (the OPEN frame goes first). */
  openStream(meta: Record<string, unknown>): TunnelStream {
    if (this.closed) throw new CtbridgeError('CTB_AGENT_DISCONNECTED', 'the tunnel connection is closed');
    const id = this.allocateId();
    const stream = new TunnelStream(this, id, this.options.window, meta, this.peerWindow);
    this.streams.set(id, stream);
    this.enqueue(encodeJson(FrameType.OPEN, id, meta));
    return stream;
  }

  sendControl(message: Record<string, unknown>): void {
    if (this.closed) return;
    this.enqueue(encodeJson(FrameType.CONTROL, 0, message));
  }

  /** Sends what is queued, then closes the WebSocket with a code and reason. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.flush();
    this.ws.close(code, truncateReason(reason));
  }

  /** Drops the connection at once (dead peer). */
  terminate(): void {
    this.ws.terminate();
  }

  // ---- StreamSink ----

  sendData(streamId: number, chunk: Buffer): void {
    this.enqueue([encodeHeader(FrameType.DATA, streamId, chunk.length), chunk]);
  }

  sendEnd(streamId: number): void {
    this.enqueue([encodeEmpty(FrameType.END, streamId)]);
  }

  sendReset(streamId: number, code: ErrorCode, message: string): void {
    this.enqueue(encodeJson(FrameType.RESET, streamId, { code, message } satisfies ResetInfo));
  }

  sendWindow(streamId: number, increment: number): void {
    this.enqueue([encodeWindow(streamId, increment)]);
  }

  release(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      if (this.isIncoming(stream.id)) this.incoming--;
    }
  }

  // ---- internals ----

  private enqueue(buffers: Buffer[]): void {
    if (this.closed) return;
    for (const b of buffers) {
      this.queue.push(b);
      this.queuedBytes += b.length;
    }
    if (this.queuedBytes >= FLUSH_BYTES) {
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const message = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue, this.queuedBytes);
    this.queue = [];
    this.queuedBytes = 0;
    this.ws.send(message, { binary: true });
  };

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id + 2 > MAX_STREAM_ID ? (this.options.role === 'relay' ? 1 : 2) : id + 2;
      if (!this.streams.has(id)) return id;
    }
  }

  private isIncoming(id: number): boolean {
    return (id % 2 === 1) !== (this.options.role === 'relay');
  }

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    this.lastSeen = Date.now();
    if (!isBinary) {
      this.protocolError(new CtbridgeError('CTB_PROTOCOL', 'received a text WebSocket message; ctbridge sends binary frames only'));
      return;
    }
    try {
      decodeFrames(data, this.onFrame);
    } catch (err) {
      this.protocolError(err as Error);
    }
  };

  private readonly onFrame = (frame: Frame): void => {
    if (frame.type === FrameType.CONTROL) {
      this.emit('control', parseJsonPayload<Record<string, unknown>>(frame));
      return;
    }
    if (frame.type === FrameType.OPEN) {
      this.onOpen(frame);
      return;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) return; // late frame for a stream we already closed
    switch (frame.type) {
      case FrameType.DATA:
        stream.onRemoteData(frame.payload, frame.shared);
        break;
      case FrameType.END:
        stream.onRemoteEnd();
        break;
      case FrameType.RESET:
        stream.onRemoteReset(parseJsonPayload<ResetInfo>(frame));
        break;
      case FrameType.WINDOW:
        stream.onRemoteWindow(parseWindowPayload(frame));
        break;
    }
  };

  private onOpen(frame: Frame): void {
    const id = frame.streamId;
    if (id === 0 || !this.isIncoming(id) || this.streams.has(id)) {
      throw new CtbridgeError('CTB_PROTOCOL', `peer opened stream ${id}, which is not a valid new id for it`);
    }
    const meta = parseJsonPayload<Record<string, unknown>>(frame);
    if (this.incoming >= this.options.maxIncomingStreams) {
      this.sendReset(id, 'CTB_AGENT_BUSY', `too many concurrent streams (limit ${this.options.maxIncomingStreams})`);
      return;
    }
    const stream = new TunnelStream(this, id, this.options.window, meta, this.peerWindow);
    this.streams.set(id, stream);
    this.incoming++;
    if (this.listenerCount('stream') === 0) {
      stream.refuse(new CtbridgeError('CTB_SHUTTING_DOWN', 'not accepting streams'));
      return;
    }
    this.emit('stream', stream);
  }

  private protocolError(err: Error): void {
    this.close(1002, `protocol error: ${err.message}`);
  }

  private readonly onAlive = (): void => {
    this.lastSeen = Date.now();
  };

  private startHeartbeat(): void {
    const { interval, timeout } = this.options.heartbeat;
    if (interval <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastSeen > timeout) {
        // Nothing heard for too long: a NAT or firewall dropped the connection silently.
        this.terminate();
        return;
      }
      this.ws.ping();
    }, interval);
    this.heartbeatTimer.unref();
  }

  private readonly onClose = (code: number, reasonBuf: Buffer): void => {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.queue = [];
    const reason = reasonBuf.toString('utf8');
    for (const stream of [...this.streams.values()]) {
      stream.abort(new CtbridgeError('CTB_AGENT_DISCONNECTED', `tunnel connection closed (code ${code}${reason ? `: ${reason}` : ''}) while the stream was open`));
    }
    this.streams.clear();
    this.incoming = 0;
    this.emit('close', code, reason);
  };
}

function noop(): void {}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  const buf = Buffer.from(reason, 'utf8');
  if (buf.length <= 123) return reason;
  let end = 120;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString('utf8')}...`;
}
