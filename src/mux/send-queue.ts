/**
 * The sending side of a MuxSession (session.ts): frames produced during one
 * event-loop turn go out as one WebSocket message, which keeps syscalls and
 * WebSocket framing per request low. The connection's send buffer is
 * bounded: past HIGH_WATER bytes not yet handed to the kernel, exchanges
 * stop sending body bytes (they wait here) until it drains below LOW_WATER.
 */
import type { WebSocket } from 'ws';
import { ChurnMap } from '../churn-map.js';
import type { Exchange } from './exchange.js';

/** Flush at once when this much is queued: a full DATA frame travels as its own message, which the receiver hands on without a copy. */
const FLUSH_BYTES = 64 * 1024;
/** Bytes handed to ws but not yet to the kernel above which exchanges stop sending body bytes. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

export class SendQueue {
  private readonly ws: WebSocket;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private unsent = 0;
  /** Exchanges waiting for the send buffer to drain, by id (a ChurnMap: see src/churn-map.ts). */
  private readonly blocked = new ChurnMap<number, Exchange>();
  private closed = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
  }

  get writable(): boolean {
    return this.unsent + this.queuedBytes < HIGH_WATER;
  }

  /** Whether bytes are queued here or handed to ws and not yet to the kernel. */
  get backlogged(): boolean {
    return this.unsent > 0 || this.queuedBytes > 0;
  }

  /** `exchange.onWritable()` is called once the send buffer has drained. */
  waitWritable(exchange: Exchange): void {
    this.blocked.set(exchange.id, exchange);
  }

  /** Forgets an exchange that ended while it waited. */
  release(exchange: Exchange): void {
    if (this.blocked.get(exchange.id) === exchange) this.blocked.delete(exchange.id);
  }

  /** The connection closed: drops what is queued and who waits; later frames are dropped. */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.blocked.clear();
  }

  enqueue(buffers: Buffer[]): void {
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

  /** Hands what is queued to ws as one message. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const message = this.queue.length === 1 ? this.queue[0] : Buffer.concat(this.queue, this.queuedBytes);
    const size = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    this.unsent += size;
    this.ws.send(message, { binary: true }, () => this.onSent(size));
  };

  private onSent(size: number): void {
    this.unsent -= size;
    if (this.blocked.size === 0 || this.unsent > LOW_WATER) return;
    const waiting = this.blocked.values();
    this.blocked.clear();
    for (const exchange of waiting) exchange.onWritable();
  }
}
