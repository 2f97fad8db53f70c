/**
 * Admission of agent handshakes during a reconnect storm (after a relay
 * restart every agent dials within seconds). At most `limit` connections are
 * between the WebSocket upgrade and `ready` at once (token check, hello);
 * the next `maxWaiting` wait their turn in arrival order, their upgrade not
 * yet answered, so the relay always has the next one at hand and never idles
 * while agents sleep in backoff. Past that, and for a connection that
 * waited longer than `maxWaitMs` (its agent gives up at `timeouts.connect`,
 * 10 s by default), the caller answers 503 CTB_RELAY_BUSY with
 * `retryAfterSeconds()`: about when the queue has room for this agent,
 * at the rate the relay measures: the agents turned away before it in this
 * burst, and what the queue holds beyond what the relay serves within
 * `maxWaitMs`; at least 1 s, at most `maxWaitMs`. Each agent spreads it over
 * 0.5-1.5 times. It leans early: an agent back too early is turned away once
 * more (cheap, and told again), one back too late leaves the relay idle
 * (measured: asking every turned-away agent for the time the whole queue
 * needs, 5 s, left the relay at a quarter of a core for the last 4 s of a
 * 15,000-agent storm, docs/performance.md).
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
  /** The socket closed while it waited: it no longer counts toward maxWaiting. */
  gone: boolean;
  onClose: () => void;
}

export class HandshakeGate {
  private active = 0;
  private waiting: Waiter[] = [];
  private head = 0;
  /** Waiters past `head` whose socket is still open. */
  private live = 0;
  private readonly now: () => number;
  /** Handshakes finished in the current bucket, and the smoothed rate (per second) of the buckets before. */
  private bucketStart: number;
  private bucketCount = 0;
  private firstDoneAt = 0;
  private lastDoneAt = 0;
  private rate = MIN_RATE_PER_S;
  /** Agents turned away since the queue last had room (they come back in that order, spread by their Retry-After). */
  private turnedAway = 0;
  /** next() is running (see there). */
  private running = false;

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

  /** Connections waiting for a turn (those that closed meanwhile no longer count). */
  get queued(): number {
    return this.live;
  }

  /**
   * Runs `start` now or once a handshake ahead finishes (each started one
   * must call `done()` exactly once); calls `busy` instead when the queue is
   * full or the connection waited too long. A connection that closes while
   * it waits is dropped from the queue and no longer counts toward its bound.
   */
  enter(socket: Duplex, start: () => void, busy: () => void): void {
    if (this.active < this.opts.limit && this.queued === 0) {
      this.active++;
      start();
      return;
    }
    if (this.queued >= this.opts.maxWaiting) {
      this.turnedAway++;
      busy();
      return;
    }
    this.turnedAway = 0;
    const w: Waiter = {
      socket, since: this.now(), start, busy, gone: false,
      onClose: () => {
        w.gone = true;
        this.live--;
      },
    };
    socket.once('close', w.onClose);
    this.live++;
    this.waiting.push(w);
    // Closed waiters are skipped when their turn comes; many of them (agents giving up) are dropped now.
    if (this.waiting.length - this.head > 2 * this.opts.maxWaiting + 1024) {
      this.waiting = this.waiting.slice(this.head).filter((x) => !x.gone);
      this.head = 0;
    }
  }

  /** A handshake ended (ready, refused or closed): the next waiting connection starts. */
  done(): void {
    this.active--;
    this.count();
    this.next();
  }

  /**
   * Starts every waiting connection now, past the limit: the node is
   * shutting down, and each start answers its connection at once
   * (CTB_SHUTTING_DOWN) instead of waiting for a handshake ahead to end.
   */
  startAll(): void {
    this.next(Infinity);
  }

  /**
   * Not reentrant: a start that ends at once (a refusal) calls done(), which
   * lands here again; the loop already running takes the next one, so the
   * stack does not grow with the queue.
   */
  private next(limit = this.opts.limit): void {
    if (this.running) return;
    this.running = true;
    try {
      this.startWaiting(limit);
    } finally {
      this.running = false;
    }
  }

  private startWaiting(limit: number): void {
    while (this.active < limit && this.head < this.waiting.length) {
      const w = this.waiting[this.head++];
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      if (w.gone) continue;
      w.socket.off('close', w.onClose);
      this.live--;
      if (w.socket.destroyed) continue;
      if (this.now() - w.since > this.opts.maxWaitMs) {
        this.turnedAway++;
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
   * The Retry-After, in whole seconds, for the agent being turned away now:
   * the agents turned away before it since the queue last had room, plus
   * what is ahead beyond what the relay serves within maxWaitMs (those
   * would wait too long), at the rate measured; 1 s to maxWaitMs.
   */
  retryAfterSeconds(): number {
    const rate = this.ratePerSecond();
    const ahead = this.active + this.queued;
    const servedInTime = Math.min(this.opts.limit + this.opts.maxWaiting, (rate * this.opts.maxWaitMs) / 1000);
    const seconds = (Math.max(0, ahead - servedInTime) + this.turnedAway) / rate;
    return Math.min(Math.ceil(this.opts.maxWaitMs / 1000), Math.max(1, Math.ceil(seconds)));
  }
}
