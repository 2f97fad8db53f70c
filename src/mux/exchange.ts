/**
 * One HTTP exchange over a session: a request head, the request body, a
 * response head and the response body (or, after a 101, raw bytes both
 * ways). The side that opens it calls `session.request(head)`; the other
 * side gets it from the session's 'exchange' event and calls `respond()`.
 *
 * Flow control is per exchange and credit based, like HTTP/2: a sender
 * starts with the peer's announced window of credit and spends it on DATA;
 * without credit, `send()` queues and returns false until 'drain' (ws style:
 * the producer pauses). A receiver grants credit back only for bytes its
 * reader reports as handed on (`consumed()`), so neither side ever holds
 * more than a window of unconsumed bytes per exchange, whatever the speed of
 * the other end. Credit beyond the announced window, data beyond the
 * granted window and data after END are the peer's protocol errors: the
 * exchange is reset and the problem reported, never trusted.
 */
import { EventEmitter } from 'node:events';
import { CtbridgeError } from '../errors.js';
import { MAX_DATA_PAYLOAD } from './frame.js';
import type { RequestHead, ResponseHead } from './heads.js';
import { toWire, type WireError } from './wire-error.js';

/** What an exchange needs from its session: frame output and bookkeeping. */
export interface ExchangeSink {
  sendReply(id: number, head: ResponseHead, end: boolean): void;
  sendData(id: number, chunk: Buffer, end: boolean): void;
  sendReset(id: number, error: WireError): void;
  sendWindow(id: number, increment: number): void;
  /** The exchange is over: forget it. */
  release(exchange: Exchange): void;
  /** False while the connection's send buffer is over its limit. */
  readonly writable: boolean;
  /** Calls `exchange.onWritable()` once the connection can take data again. */
  waitWritable(exchange: Exchange): void;
  /** A peer misbehaved on this exchange (logged by the session's owner). */
  problem(exchange: Exchange, message: string): void;
}

export interface ExchangeEvents {
  /** Requester: the peer's response head. */
  response: [head: ResponseHead];
  /** Body bytes from the peer; call consumed(n) once they are handed on. */
  data: [chunk: Buffer];
  /** The peer's direction ended. */
  end: [];
  /** The peer, or the connection, aborted the exchange. */
  reset: [err: CtbridgeError];
  /** send() may be called again. */
  drain: [];
  /** The exchange is over (both directions ended, or reset either way). */
  close: [];
}

const EMPTY = Buffer.alloc(0);

export interface ExchangeOptions {
  /** Our receive window: what the peer may send unacknowledged. */
  window: number;
  /** The peer's window: our initial send credit, and its cap. */
  peerWindow: number;
  /** The peer's direction is already over (its OPEN carried END). */
  remoteEnded?: boolean;
  /** Our direction is already over (our OPEN carried END). */
  localEnded?: boolean;
}

export class Exchange extends EventEmitter<ExchangeEvents> {
  /** The response head: received (requester) or sent (acceptor). */
  response: ResponseHead | undefined;
  /** Body bytes received from the peer / sent to it. */
  bytesIn = 0;
  bytesOut = 0;

  private credit: number;
  private readonly window: number;
  private readonly peerWindow: number;
  private received = 0;
  private granted = 0;
  private toGrant = 0;
  private pending: Buffer[] = [];
  private endPending = false;
  private needDrain = false;
  private localEnded = false;
  private remoteEnded: boolean;
  private done = false;

  constructor(
    private readonly sink: ExchangeSink,
    readonly id: number,
    readonly head: RequestHead,
    /** True when the peer opened it (we respond), false when we did (we wait for the response). */
    readonly incoming: boolean,
    options: ExchangeOptions,
  ) {
    super();
    this.window = options.window;
    this.peerWindow = options.peerWindow;
    this.credit = options.peerWindow;
    this.remoteEnded = options.remoteEnded ?? false;
    this.localEnded = options.localEnded ?? false;
  }

  /** Over: both directions ended, or reset. */
  get closed(): boolean {
    return this.done;
  }

  /** Our direction has ended (END sent, or queued behind data). */
  get ended(): boolean {
    return this.localEnded || this.endPending;
  }

  /** The peer's direction has ended. */
  get peerEnded(): boolean {
    return this.remoteEnded;
  }

  // ---- our side ----

  /** Acceptor: sends the response head; `end` when no body follows. */
  respond(head: ResponseHead, end = false): void {
    if (this.done || !this.incoming || this.response) return;
    this.response = head;
    this.sink.sendReply(this.id, head, end);
    if (end) this.endLocal();
  }

  /**
   * Sends body bytes. False when they had to be queued (no credit, or the
   * connection is backed up): stop producing until 'drain'.
   */
  send(chunk: Buffer): boolean {
    if (this.done || this.localEnded || this.endPending || chunk.length === 0) return !this.done;
    if (this.pending.length === 0 && this.credit >= chunk.length && this.sink.writable) {
      this.write(chunk);
      return true;
    }
    this.pending.push(chunk);
    this.flush();
    if (this.pending.length > 0) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Ends our direction once queued bytes are out. */
  end(): void {
    if (this.done || this.localEnded || this.endPending) return;
    if (this.pending.length === 0) {
      this.sink.sendData(this.id, EMPTY, true);
      this.endLocal();
    } else {
      this.endPending = true;
    }
  }

  /** Grants the peer credit for `n` bytes handed on. */
  consumed(n: number): void {
    if (this.done || this.remoteEnded) return;
    this.toGrant += n;
    if (this.toGrant >= this.window / 4) {
      this.sink.sendWindow(this.id, this.toGrant);
      this.granted += this.toGrant;
      this.toGrant = 0;
    }
  }

  /** Aborts the exchange; the peer gets the error as data. */
  reset(err: CtbridgeError): void {
    if (this.done) return;
    this.sink.sendReset(this.id, toWire(err));
    this.finish();
  }

  // ---- frames from the peer (called by the session) ----

  onResponse(head: ResponseHead, end: boolean): void {
    if (this.done) return;
    if (this.incoming || this.response) {
      this.protocolError(this.incoming ? 'a REPLY on an exchange the peer opened' : 'a second REPLY');
      return;
    }
    this.response = head;
    this.emit('response', head);
    if (end) this.onData(EMPTY, false, true);
  }

  onData(payload: Buffer, shared: boolean, end: boolean): void {
    if (this.done) return;
    if (this.remoteEnded) {
      this.protocolError('DATA after END');
      return;
    }
    if (!this.incoming && !this.response) {
      this.protocolError('DATA before the REPLY');
      return;
    }
    if (payload.length > 0) {
      this.received += payload.length;
      if (this.received - this.granted > this.window) {
        this.protocolError(`${this.received - this.granted} bytes sent over a ${this.window}-byte window`);
        return;
      }
      this.bytesIn += payload.length;
      // A payload sharing its WebSocket message with other frames is copied
      // out, so a slow reader pins only its own bytes.
      this.emit('data', shared ? Buffer.from(payload) : payload);
    }
    if (end && !this.done) {
      this.remoteEnded = true;
      this.emit('end');
      if (this.localEnded) this.finish();
    }
  }

  onWindow(increment: number): void {
    if (this.done) return;
    if (increment === 0 || this.credit + increment > this.peerWindow) {
      this.protocolError(`WINDOW of ${increment} bytes would give ${this.credit + increment} bytes of credit, over the ${this.peerWindow}-byte window`);
      return;
    }
    this.credit += increment;
    this.flush();
  }

  onReset(err: CtbridgeError): void {
    if (this.done) return;
    this.finish();
    this.emit('reset', err);
  }

  /** The connection is gone: fail without sending anything. */
  abort(err: CtbridgeError): void {
    this.onReset(err);
  }

  /** The connection can take data again. */
  onWritable(): void {
    this.flush();
  }

  // ---- internals ----

  private write(chunk: Buffer): void {
    for (let offset = 0; offset < chunk.length; offset += MAX_DATA_PAYLOAD) {
      const piece = offset === 0 && chunk.length <= MAX_DATA_PAYLOAD ? chunk : chunk.subarray(offset, offset + MAX_DATA_PAYLOAD);
      this.sink.sendData(this.id, piece, false);
    }
    this.credit -= chunk.length;
    this.bytesOut += chunk.length;
  }

  private flush(): void {
    while (this.pending.length > 0 && this.credit > 0 && !this.done) {
      if (!this.sink.writable) {
        this.sink.waitWritable(this);
        return;
      }
      const chunk = this.pending[0];
      if (chunk.length <= this.credit) {
        this.pending.shift();
        this.write(chunk);
      } else {
        this.pending[0] = chunk.subarray(this.credit);
        this.write(chunk.subarray(0, this.credit));
      }
    }
    if (this.pending.length > 0 || this.done) return;
    if (this.endPending) {
      this.endPending = false;
      this.sink.sendData(this.id, EMPTY, true);
      this.endLocal();
    }
    if (this.needDrain && !this.done) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  private endLocal(): void {
    this.localEnded = true;
    if (this.remoteEnded) this.finish();
  }

  /** The peer broke the protocol on this exchange: report it, reset the exchange, tell our side. */
  protocolError(message: string): void {
    if (this.done) return;
    this.sink.problem(this, message);
    const err = new CtbridgeError('CTB_PROTOCOL', `the peer broke the tunnel protocol on exchange ${this.id}: ${message}`);
    this.reset(err);
    this.emit('reset', err);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.pending = [];
    this.sink.release(this);
    // After the listeners of the event that finished it.
    queueMicrotask(() => this.emit('close'));
  }
}
