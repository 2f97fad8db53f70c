/**
 * One multiplexed stream: a Duplex that looks enough like a net.Socket for
 * Node's HTTP client (http.Agent keep-alive) and server (`emit('connection')`)
 * to use it as their connection.
 *
 * Flow control is per stream and credit based. The sender starts with
 * `window` bytes of credit and spends it on DATA; with no credit left, the
 * write callback waits, which stalls the producer through normal stream
 * backpressure. The receiver grants credit back (WINDOW) only for bytes its
 * reader has consumed, so neither side ever holds more than `window`
 * unconsumed bytes for a stream, whatever the speed of the other end.
 */
import { Duplex } from 'node:stream';
import { CtbridgeError, type ErrorCode } from '../errors.js';
import { MAX_DATA_PAYLOAD } from './frame.js';

/** What a stream needs from its session: frame output and bookkeeping. */
export interface StreamSink {
  sendData(streamId: number, chunk: Buffer): void;
  sendEnd(streamId: number): void;
  sendReset(streamId: number, code: ErrorCode, message: string): void;
  sendWindow(streamId: number, increment: number): void;
  release(stream: TunnelStream): void;
}

export interface ResetInfo {
  code: ErrorCode;
  message: string;
}

export class TunnelStream extends Duplex {
  readonly id: number;
  /** The OPEN frame's metadata (tunnel name, request id, ...). */
  readonly meta: Readonly<Record<string, unknown>>;
  /** Never "connecting": Node's HTTP client writes to the stream at once. */
  readonly connecting = false;

  private readonly sink: StreamSink;
  private readonly window: number;
  private sendCredit: number;
  private received = 0;
  private granted = 0;
  private pendingChunk: Buffer | null = null;
  private pendingCallback: ((err?: Error | null) => void) | null = null;
  private endSent = false;
  private endReceived = false;
  private resetReceived = false;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  /**
   * `window`: what this side lets the peer send unacknowledged (our receive
   * buffer bound); `sendWindow`: what the peer lets us send (its window).
   */
  constructor(sink: StreamSink, id: number, window: number, meta: Record<string, unknown>, sendWindow = window) {
    super({ allowHalfOpen: true, readableHighWaterMark: window, writableHighWaterMark: MAX_DATA_PAYLOAD, decodeStrings: true });
    this.sink = sink;
    this.id = id;
    this.window = window;
    this.sendCredit = sendWindow;
    this.meta = meta;
  }

  // ---- frames from the peer (called by the session) ----

  onRemoteData(payload: Buffer, shared = true): void {
    if (this.destroyed) return;
    if (this.endReceived) {
      this.destroy(new CtbridgeError('CTB_PROTOCOL', `stream ${this.id}: DATA after END`));
      return;
    }
    this.received += payload.length;
    if (this.received - this.granted > this.window) {
      this.destroy(new CtbridgeError('CTB_PROTOCOL', `stream ${this.id}: peer sent ${this.received - this.granted} bytes over a ${this.window}-byte window`));
      return;
    }
    this.touch();
    // A payload sharing its WebSocket message with other frames is copied out,
    // so a slow reader pins only its own bytes.
    this.push(shared ? Buffer.from(payload) : payload);
    this.maybeGrant();
  }

  onRemoteEnd(): void {
    if (this.destroyed || this.endReceived) return;
    this.endReceived = true;
    this.push(null);
  }

  onRemoteReset(info: ResetInfo): void {
    if (this.destroyed) return;
    this.resetReceived = true;
    const err = new CtbridgeError(info.code, info.message);
    this.destroy(err);
  }

  onRemoteWindow(increment: number): void {
    this.sendCredit += increment;
    this.flushPending();
  }

  /**
   * Turns down a stream the peer opened: the peer gets a RESET with the code
   * and message; locally the stream just closes (no 'error' to handle).
   */
  refuse(err: CtbridgeError): void {
    if (this.destroyed) return;
    this.sink.sendReset(this.id, err.code, err.message);
    this.resetReceived = true; // nothing more to send
    this.destroy();
  }

  /** The session is gone: fail the stream without sending anything. */
  abort(err: Error): void {
    this.resetReceived = true;
    this.destroy(err);
  }

  // ---- Duplex implementation ----

  /**
   * Every way of consuming a Readable (pipe, 'data', 'readable' + read(),
   * async iteration) takes buffered bytes out through read(), so this is
   * where consumed bytes turn into credit. (_read is no use for that: Node
   * calls it only once until the next push.)
   */
  override read(size?: number): any {
    const chunk: unknown = super.read(size);
    if (chunk !== null) this.maybeGrant();
    return chunk;
  }

  override _read(): void {
    // Data arrives when the peer sends it; credit is granted in read().
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.writeChunk(chunk, callback);
  }

  /** Corked writes (Node's HTTP head + body) leave as one DATA frame. */
  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.writeChunk(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  private writeChunk(chunk: Buffer, callback: (err?: Error | null) => void): void {
    this.touch();
    this.pendingChunk = chunk;
    this.pendingCallback = callback;
    this.flushPending();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.endSent = true;
    this.sink.sendEnd(this.id);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.clearIdleTimer();
    const clean = this.endSent && this.endReceived;
    if (!clean && !this.resetReceived) {
      const code = err instanceof CtbridgeError ? err.code : 'CTB_AGENT_DISCONNECTED';
      this.sink.sendReset(this.id, code, err ? err.message : 'stream closed before it finished');
    }
    if (this.pendingCallback) {
      const cb = this.pendingCallback;
      this.pendingCallback = null;
      this.pendingChunk = null;
      cb(err ?? new CtbridgeError('CTB_AGENT_DISCONNECTED', 'stream closed'));
    }
    this.sink.release(this);
    callback(err);
  }

  private flushPending(): void {
    let chunk = this.pendingChunk;
    while (chunk && this.sendCredit > 0) {
      const n = Math.min(chunk.length, this.sendCredit, MAX_DATA_PAYLOAD);
      this.sink.sendData(this.id, n === chunk.length ? chunk : chunk.subarray(0, n));
      this.sendCredit -= n;
      chunk = n === chunk.length ? null : chunk.subarray(n);
    }
    this.pendingChunk = chunk;
    if (!chunk && this.pendingCallback) {
      const cb = this.pendingCallback;
      this.pendingCallback = null;
      cb();
    }
  }

  /**
   * Grant credit for consumed bytes once they reach a quarter window. Until
   * then the sender still holds at least three quarters of a window, so small
   * request/response traffic never needs a WINDOW frame.
   */
  private maybeGrant(): void {
    const consumed = this.received - this.readableLength - this.granted;
    if (consumed >= this.window / 4 && !this.endReceived) {
      this.granted += consumed;
      this.sink.sendWindow(this.id, consumed);
    }
  }

  // ---- net.Socket look-alike surface (http.Agent keep-alive needs these) ----

  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** net.Socket's "end, then destroy once flushed" (http-proxy-3 calls it after a failed upgrade). */
  destroySoon(): void {
    if (this.writable) this.end();
    else this.destroy();
  }

  /** The idle timeout in ms (http.Agent reads it when pooling the stream). */
  get timeout(): number {
    return this.idleMs;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** Emits 'timeout' after `ms` without reads or writes, like net.Socket (0 disables and removes `callback`). */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.clearIdleTimer();
    if (ms > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  private touch(): void {
    if (this.idleTimer && this.idleMs > 0) this.idleTimer.refresh();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }
}
