/**
 * A hashed timer wheel: many coarse timers on one interval. A relay holding
 * tens of thousands of idle agent connections keeps one heartbeat check per
 * connection here instead of one Node timer each (docs/performance.md,
 * "Fleet scale"). Timers fire up to one tick late, never early.
 *
 * A timer lands in the slot of the tick it is due in (slot = tick mod
 * slots); a timer due more than one turn of the wheel ahead waits in its
 * slot and is passed over until its turn. The interval runs only while
 * timers are scheduled, and never keeps the process alive.
 */

export interface WheelTimer {
  /** Called once when the timer is due (it may schedule itself again). */
  readonly fire: () => void;
  /** When it is due (ms since the epoch); 0 while not scheduled. */
  at: number;
  /** Index of the slot holding it; -1 while not scheduled. */
  slot: number;
}

export function wheelTimer(fire: () => void): WheelTimer {
  return { fire, at: 0, slot: -1 };
}

export class TimerWheel {
  private readonly slots: Set<WheelTimer>[];
  /** The last tick whose slot has been processed. */
  private cursor = 0;
  private interval: NodeJS.Timeout | null = null;
  private count = 0;

  constructor(
    readonly tickMs = 250,
    slotCount = 512,
  ) {
    this.slots = Array.from({ length: slotCount }, () => new Set<WheelTimer>());
  }

  /** Timers scheduled now. */
  get size(): number {
    return this.count;
  }

  /** (Re)schedules `timer` to fire at `at` (ms since the epoch). */
  schedule(timer: WheelTimer, at: number): void {
    // Unlinked, not cancelled: a reschedule of the only timer must not stop and restart the interval.
    this.unlink(timer);
    if (this.interval === null) this.start();
    const tick = Math.max(Math.ceil(at / this.tickMs), this.cursor + 1);
    const slot = tick % this.slots.length;
    timer.at = at;
    timer.slot = slot;
    this.slots[slot].add(timer);
    this.count++;
  }

  cancel(timer: WheelTimer): void {
    this.unlink(timer);
    if (this.count === 0) this.stop();
  }

  private unlink(timer: WheelTimer): void {
    if (timer.slot < 0) return;
    if (this.slots[timer.slot].delete(timer)) this.count--;
    timer.slot = -1;
    timer.at = 0;
  }

  private start(): void {
    this.cursor = Math.floor(Date.now() / this.tickMs);
    this.interval = setInterval(this.tick, this.tickMs);
    this.interval.unref();
  }

  private stop(): void {
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
  }

  private readonly tick = (): void => {
    const now = Date.now();
    const nowTick = Math.floor(now / this.tickMs);
    // After a stall of more than one turn, one pass over every slot is enough.
    const last = Math.min(nowTick, this.cursor + this.slots.length);
    for (let t = this.cursor + 1; t <= last; t++) {
      this.cursor = t;
      const slot = this.slots[t % this.slots.length];
      for (const timer of slot) {
        if (timer.at > now) continue;
        slot.delete(timer);
        this.count--;
        timer.slot = -1;
        timer.at = 0;
        try {
          timer.fire();
        } catch {
          // A timer's owner handles its own errors; one failing must not stop the others.
        }
      }
    }
    this.cursor = nowTick;
    if (this.count === 0) this.stop();
  };
}

/** The wheel every session of this process shares. */
export const sharedWheel = new TimerWheel();
