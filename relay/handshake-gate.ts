/**
 * Admission of agent handshakes during a reconnect storm (after a relay
 * restart every agent dials within seconds). At most `limit` connections are
 * between the WebSocket upgrade and `ready` at once (token check, hello);
 * the next `maxWaiting` wait their turn in arrival order, their upgrade not
 * yet answered, so the relay always has the next one at hand and never idles
 * while agents sleep in backoff. Past that, and for a connection that
 * waited longer than `maxWaitMs` (its agent gives up at `timeouts.connect`,
 * 10 s by default), the caller answers 503 CTB_RELAY_BUSY with
 * `retryAfterSeconds()`: the time the relay needs for the handshakes ahead
 * at the rate it measures, at most `maxWaitMs`, so the agents come back
 * about when there is room (each spreads it over 0.5-1.5 times). It leans
 * early: an agent back too early is turned away once more (cheap, and told
 * again), one back too late leaves the relay idle.
 */
import type { Duplex } from 'node:stream';

export interface HandshakeGateOptions {
  /** Handshakes under way at once. */
  limit: number;
  /** Connections waiting for a turn, at most. */
  maxWaiting: number;
  /** A connection that waited longer is turned away when its turn comes. */
  maxWaitMs: number;
  /** Monotonic ms (tests). */
  now?: () => number;
}

/**
 * Handshakes per second assumed until some have been measured, and the
 * floor of the estimate for Retry-After: a 2-core relay admits 1,500-3,000
 * per second on loopback; measured lower is mostly agents slow to answer.
 */
export const MIN_RATE_PER_S = 1000;
/** The rate is measured over buckets of this length, smoothed (half the weight on the last bucket). */
const BUCKET_MS = 250;

interface Waiter {
  socket: Duplex;
  since: number;
  start: () => void;
  busy: () => void;
}

export class HandshakeGate {
  private active = 0;
  private waiting: Waiter[] = [];
  private head = 0;
  private readonly now: () => number;
  /** Handshakes finished in the current bucket, and the smoothed rate (per second) of the buckets before. */
  private bucketStart: number;
  private bucketCount = 0;
  private firstDoneAt = 0;
  private lastDoneAt = 0;
  private rate = MIN_RATE_PER_S;

  constructor(private readonly opts: HandshakeGateOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.bucketStart = this.now();
  }

  /** Handshakes under way at once, at most. */
  get limit(): number {
    return this.opts.limit;
  }

  /** Handshakes under way. */
  get underWay(): number {
    return this.active;
  }

  /** Connections waiting for a turn (some may have closed meanwhile). */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /**
   * Runs `start` now or once a handshake ahead finishes (each started one
   * must call `done()` exactly once); calls `busy` instead when the queue is
   * full or the connection waited too long. A connection that closes while
   * it waits is dropped from the queue.
   */
  enter(socket: Duplex, start: () => void, busy: () => void): void {
    if (this.active < this.opts.limit && this.queued === 0) {
      this.active++;
      start();
      return;
    }
    if (this.queued >= this.opts.maxWaiting) {
      busy();
      return;
    }
    this.waiting.push({ socket, since: this.now(), start, busy });
  }

  /** A handshake ended (ready, refused or closed): the next waiting connection starts. */
  done(): void {
    this.active--;
    this.count();
    this.next();
  }

  private next(): void {
    while (this.active < this.opts.limit && this.head < this.waiting.length) {
      const w = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      if (w.socket.destroyed) continue;
      if (this.now() - w.since > this.opts.maxWaitMs) {
        w.busy();
        continue;
      }
      this.active++;
      w.start();
    }
  }

  private count(): void {
    this.roll();
    const now = this.now();
    if (this.bucketCount === 0) this.firstDoneAt = now;
    this.bucketCount++;
    this.lastDoneAt = now;
  }

  /**
   * Closes the bucket once it has lasted BUCKET_MS. Its rate is taken
   * between its first and last finished handshake: the time before (the
   * first ones of a storm still under way) and after (idle; the bucket is
   * closed by the next call, maybe much later) says nothing about it.
   */
  private roll(): void {
    const now = this.now();
    if (now - this.bucketStart < BUCKET_MS) return;
    if (this.bucketCount >= 2 && this.lastDoneAt > this.firstDoneAt) {
      this.rate = (this.rate + ((this.bucketCount - 1) * 1000) / (this.lastDoneAt - this.firstDoneAt)) / 2;
    }
    this.bucketStart = now;
    this.bucketCount = 0;
  }

  /** Handshakes finished per second, smoothed (at least MIN_RATE_PER_S). */
  ratePerSecond(): number {
    this.roll();
    return Math.max(MIN_RATE_PER_S, this.rate);
  }

  /**
   * The Retry-After, in whole seconds, for an agent turned away now: the
   * handshakes ahead at the rate measured, at most maxWaitMs (what a
   * connection arriving now would wait at most if there were room: asked
   * back within that, turned-away agents keep the queue fed).
   */
  retryAfterSeconds(): number {
    const ahead = this.active + this.queued;
    return Math.min(Math.ceil(this.opts.maxWaitMs / 1000), Math.max(1, Math.ceil(ahead / this.ratePerSecond())));
  }
}
