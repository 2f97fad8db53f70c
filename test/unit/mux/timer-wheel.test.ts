import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimerWheel, wheelTimer } from '../../../src/mux/timer-wheel.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TimerWheel', () => {
  it('fires a timer at its tick, never early and at most one tick late', () => {
    const wheel = new TimerWheel(100, 8);
    const fired: number[] = [];
    const t = wheelTimer(() => fired.push(Date.now()));
    wheel.schedule(t, Date.now() + 250);
    vi.advanceTimersByTime(249);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(fired).toHaveLength(1);
    expect(fired[0] - 1_000_000).toBeGreaterThanOrEqual(250);
    expect(fired[0] - 1_000_000).toBeLessThanOrEqual(350);
    expect(wheel.size).toBe(0);
  });

  it('keeps a timer due more than one turn ahead until its turn', () => {
    const wheel = new TimerWheel(100, 4); // one turn: 400 ms
    const fire = vi.fn();
    wheel.schedule(wheelTimer(fire), Date.now() + 1000);
    vi.advanceTimersByTime(900);
    expect(fire).not.toHaveBeenCalled();
    vi.advanceTimersByTime(200);
    expect(fire).toHaveBeenCalledOnce();
  });

  it('cancel and reschedule move a timer; rescheduling from its own callback works', () => {
    const wheel = new TimerWheel(100, 8);
    const a = vi.fn();
    const ta = wheelTimer(a);
    wheel.schedule(ta, Date.now() + 100);
    wheel.cancel(ta);
    let count = 0;
    const tb = wheelTimer(() => {
      count++;
      if (count < 3) wheel.schedule(tb, Date.now() + 100);
    });
    wheel.schedule(tb, Date.now() + 100);
    vi.advanceTimersByTime(1000);
    expect(a).not.toHaveBeenCalled();
    expect(count).toBe(3);
    expect(wheel.size).toBe(0);
  });

  it('runs its interval only while timers are scheduled', () => {
    const wheel = new TimerWheel(100, 8);
    expect(vi.getTimerCount()).toBe(0);
    const timers = Array.from({ length: 1000 }, () => wheelTimer(() => undefined));
    for (const [i, t] of timers.entries()) wheel.schedule(t, Date.now() + 100 + (i % 5) * 100);
    expect(vi.getTimerCount()).toBe(1); // one interval for a thousand timers
    vi.advanceTimersByTime(700);
    expect(wheel.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  // Regression (review): rescheduling the only timer (an agent's one heartbeat, on every idle-to-busy change)
  // cancelled it first, which stopped the interval, and then started a new one.
  it('rescheduling the only timer keeps the interval it has', () => {
    const wheel = new TimerWheel(100, 8);
    const t = wheelTimer(() => undefined);
    const setInterval = vi.spyOn(globalThis, 'setInterval');
    const clearInterval = vi.spyOn(globalThis, 'clearInterval');
    wheel.schedule(t, Date.now() + 500);
    for (let i = 1; i <= 10; i++) wheel.schedule(t, Date.now() + 500 - i * 10);
    expect(setInterval).toHaveBeenCalledTimes(1);
    expect(clearInterval).not.toHaveBeenCalled();
    expect(wheel.size).toBe(1);
    setInterval.mockRestore();
    clearInterval.mockRestore();
  });

  it('a callback that throws does not stop the others', () => {
    const wheel = new TimerWheel(100, 8);
    const ok = vi.fn();
    wheel.schedule(wheelTimer(() => { throw new Error('boom'); }), Date.now() + 100);
    wheel.schedule(wheelTimer(ok), Date.now() + 100);
    vi.advanceTimersByTime(200);
    expect(ok).toHaveBeenCalledOnce();
  });

  it('after the event loop stalled for longer than a turn, fires everything due at once', () => {
    const wheel = new TimerWheel(100, 4);
    const fire = vi.fn();
    for (let i = 1; i <= 6; i++) wheel.schedule(wheelTimer(fire), Date.now() + i * 100);
    vi.setSystemTime(Date.now() + 2000); // the clock jumps; the interval has not run
    vi.advanceTimersByTime(100);
    expect(fire).toHaveBeenCalledTimes(6);
  });
});
