/**
 * Is the peer still there? One session's liveness, checked on the shared
 * timer wheel (docs/wire-protocol.md, "Liveness"):
 *
 * - Idle: only the active side (the agent) pings, every `interval`; the
 *   passive side (the relay) answers (WebSocket pongs are automatic) and
 *   pings only when it has heard nothing for 1.5 × `interval` (a peer with
 *   a longer interval, or an older one). Either side drops a connection it
 *   has heard nothing on for `timeout`.
 * - Busy (exchanges open): when nothing has arrived for `probeAfter`, ping
 *   at once; no answer (nor anything else) within `probeTimeout` and the
 *   link is dead. While our own bytes are still queued in front of the
 *   ping, the probe waits for them (a slow link is not a dead one); the
 *   `timeout` still bounds that.
 *
 * Anything received counts as an answer: frames, pings, pongs.
 */
import { sharedWheel, wheelTimer, type TimerWheel, type WheelTimer } from './timer-wheel.js';

/** Busy link: probe when nothing has arrived for this long. */
export const PROBE_AFTER_MS = 2000;
/** Busy link: dead when the probe is not answered within this. */
export const PROBE_TIMEOUT_MS = 4000;

const PROBE_POLL_MS = 500;

export interface HeartbeatTiming {
  /** Ping period of the active side; 0 turns every liveness check off. */
  interval: number;
  /** Heard nothing for this long: dead. */
  timeout: number;
  probeAfter?: number;
  probeTimeout?: number;
}

export interface HeartbeatPeer {
  ping(): void;
  /** The link is dead: drop it (called once). */
  dead(reason: string): void;
  /** Exchanges are open on the link. */
  busy(): boolean;
  /** Our own bytes are queued, not yet handed to the kernel (a ping sent now waits behind them). */
  backlogged(): boolean;
}

export class Heartbeat {
  /** When anything last arrived (ms since the epoch). */
  lastSeen = Date.now();
  private lastPing = Date.now();
  /** When the outstanding probe was sent; 0: none. */
  private probeAt = 0;
  private readonly timer: WheelTimer;
  private readonly probeAfter: number;
  private readonly probeTimeout: number;
  private stopped = false;

  constructor(
    /** The side that pings while idle (the agent). */
    private readonly active: boolean,
    private readonly timing: HeartbeatTiming,
    private readonly peer: HeartbeatPeer,
    private readonly wheel: TimerWheel = sharedWheel,
  ) {
    this.probeAfter = timing.probeAfter ?? PROBE_AFTER_MS;
    this.probeTimeout = timing.probeTimeout ?? PROBE_TIMEOUT_MS;
    this.timer = wheelTimer(this.check);
    this.stopped = timing.interval <= 0;
    this.arm(Date.now());
  }

  /** Something arrived. */
  seen(now: number): void {
    this.lastSeen = now;
  }

  /** An exchange opened: make sure the probe check is due in time. */
  wake(): void {
    if (this.stopped) return;
    const due = this.probeAt ? this.probeAt + this.probeTimeout : this.lastSeen + this.probeAfter;
    if (this.timer.slot < 0 || due < this.timer.at) this.wheel.schedule(this.timer, due);
  }

  stop(): void {
    this.stopped = true;
    this.wheel.cancel(this.timer);
  }

  private readonly check = (): void => {
    if (this.stopped) return;
    const now = Date.now();
    const { interval, timeout } = this.timing;
    const silent = now - this.lastSeen;
    if (silent >= timeout) {
      this.die(`nothing heard for ${silent} ms (heartbeat.timeout ${timeout} ms)`);
      return;
    }
    if (this.probeAt && this.lastSeen >= this.probeAt) this.probeAt = 0;
    if (this.peer.busy()) {
      if (this.probeAt && now - this.probeAt >= this.probeTimeout && !this.peer.backlogged()) {
        this.die(`no answer to a ping within ${now - this.probeAt} ms while exchanges waited (nothing heard for ${silent} ms)`);
        return;
      }
      if (!this.probeAt && silent >= this.probeAfter) {
        this.probeAt = now;
        this.ping(now);
      }
    } else {
      this.probeAt = 0;
    }
    if (this.active ? now - this.lastPing >= interval : silent >= interval * 1.5 && now - this.lastPing >= interval) this.ping(now);
    this.arm(now);
  };

  private ping(now: number): void {
    this.lastPing = now;
    this.peer.ping();
  }

  private die(reason: string): void {
    this.stop();
    this.peer.dead(reason);
  }

  /** Schedules the next check: the earliest moment something is due. */
  private arm(now: number): void {
    if (this.stopped) return;
    const { interval, timeout } = this.timing;
    let due = this.lastSeen + timeout;
    due = Math.min(due, this.active ? this.lastPing + interval : Math.max(this.lastSeen + interval * 1.5, this.lastPing + interval));
    if (this.peer.busy()) {
      // While a probe is out, look every PROBE_POLL_MS whether it was answered, so the next probe follows the next silence
      // (a dead link is found within probeAfter + probeTimeout of the last thing heard, plus the wheel's tick).
      due = Math.min(due, this.probeAt ? Math.min(Math.max(this.probeAt + this.probeTimeout, now + 1), now + PROBE_POLL_MS) : this.lastSeen + this.probeAfter);
    }
    this.wheel.schedule(this.timer, Math.max(due, now + 1));
  }
}
