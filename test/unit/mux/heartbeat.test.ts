import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Heartbeat, type HeartbeatTiming } from '../../../src/mux/heartbeat.js';
import { TimerWheel } from '../../../src/mux/timer-wheel.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 5_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const TIMING: HeartbeatTiming = { interval: 10_000, timeout: 30_000, probeAfter: 2000, probeTimeout: 4000 };

function link(active: boolean, timing: HeartbeatTiming = TIMING) {
  const state = { busy: false, backlogged: false, pings: [] as number[], dead: [] as { at: number; reason: string }[] };
  const start = Date.now();
  const hb = new Heartbeat(active, timing, {
    ping: () => state.pings.push(Date.now() - start),
    dead: (reason) => state.dead.push({ at: Date.now() - start, reason }),
    busy: () => state.busy,
    backlogged: () => state.backlogged,
  }, new TimerWheel(100, 64));
  return { hb, state, start };
}

describe('Heartbeat: idle link', () => {
  it('the active side (agent) pings every interval', () => {
    const { hb, state } = link(true);
    vi.advanceTimersByTime(25_000);
    hb.seen(Date.now()); // pongs keep it alive
    vi.advanceTimersByTime(10_000);
    expect(state.pings.map((t) => Math.round(t / 1000))).toEqual([10, 20, 30]);
    expect(state.dead).toEqual([]);
    hb.stop();
  });

  it('the passive side (relay) does not ping while the peer pings', () => {
    const { hb, state } = link(false);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(10_000);
      hb.seen(Date.now()); // the agent's ping
    }
    expect(state.pings).toEqual([]);
    expect(state.dead).toEqual([]);
    hb.stop();
  });

  it('the passive side pings once it has heard nothing for 1.5 intervals', () => {
    const { hb, state } = link(false);
    vi.advanceTimersByTime(16_000);
    expect(state.pings).toHaveLength(1);
    expect(state.pings[0]).toBeGreaterThanOrEqual(15_000);
    hb.stop();
  });

  it('either side drops a link silent for the timeout, not before', () => {
    for (const active of [true, false]) {
      const { state } = link(active);
      vi.advanceTimersByTime(29_900);
      expect(state.dead).toEqual([]);
      vi.advanceTimersByTime(300);
      expect(state.dead).toHaveLength(1);
      expect(state.dead[0].reason).toMatch(/^nothing heard for 30\d\d\d ms \(heartbeat.timeout 30000 ms\)$/);
    }
  });

  it('interval 0 turns every check off', () => {
    const { hb, state } = link(true, { interval: 0, timeout: 0 });
    hb.wake();
    vi.advanceTimersByTime(120_000);
    expect(state.pings).toEqual([]);
    expect(state.dead).toEqual([]);
  });
});

describe('Heartbeat: busy link (dead-link probe)', () => {
  it('probes after probeAfter of silence and declares the link dead probeTimeout later', () => {
    const { hb, state } = link(false);
    state.busy = true;
    hb.wake();
    vi.advanceTimersByTime(2200);
    expect(state.pings).toHaveLength(1);
    expect(state.pings[0]).toBeGreaterThanOrEqual(2000);
    vi.advanceTimersByTime(4000);
    expect(state.dead).toHaveLength(1);
    expect(state.dead[0].at).toBeGreaterThanOrEqual(6000);
    expect(state.dead[0].at).toBeLessThanOrEqual(6400);
    expect(state.dead[0].reason).toMatch(/^no answer to a ping within 4\d\d\d ms while exchanges waited/);
  });

  it('an answered probe keeps the link; the next probe follows the next silence', () => {
    const { hb, state } = link(true);
    state.busy = true;
    hb.wake();
    vi.advanceTimersByTime(2100);
    expect(state.pings).toHaveLength(1);
    hb.seen(Date.now()); // the pong
    vi.advanceTimersByTime(2100);
    expect(state.pings).toHaveLength(2);
    hb.seen(Date.now());
    vi.advanceTimersByTime(1000);
    expect(state.dead).toEqual([]);
    hb.stop();
  });

  it('traffic on a busy link sends no probe', () => {
    const { hb, state } = link(false);
    state.busy = true;
    hb.wake();
    for (let i = 0; i < 50; i++) {
      vi.advanceTimersByTime(500);
      hb.seen(Date.now());
    }
    expect(state.pings).toEqual([]);
    hb.stop();
  });

  it('an exchange opening on a link idle for long probes at once', () => {
    const { hb, state } = link(false);
    vi.advanceTimersByTime(9000); // idle: nothing due
    expect(state.pings).toEqual([]);
    state.busy = true;
    hb.wake();
    vi.advanceTimersByTime(200);
    expect(state.pings).toHaveLength(1);
    hb.stop();
  });

  it('a probe stuck behind our own queued bytes waits for them, bounded by the timeout', () => {
    const { hb, state } = link(false);
    state.busy = true;
    state.backlogged = true;
    hb.wake();
    vi.advanceTimersByTime(20_000);
    expect(state.pings[0]).toBe(2000);
    expect(state.dead).toEqual([]);
    vi.advanceTimersByTime(10_200);
    expect(state.dead).toHaveLength(1);
    expect(state.dead[0].reason).toMatch(/^nothing heard/);
  });

  it('going idle forgets an unanswered probe (the idle timeout takes over)', () => {
    const { hb, state } = link(false);
    state.busy = true;
    hb.wake();
    vi.advanceTimersByTime(2100);
    expect(state.pings).toHaveLength(1);
    state.busy = false;
    vi.advanceTimersByTime(10_000);
    expect(state.dead).toEqual([]);
    vi.advanceTimersByTime(20_000);
    expect(state.dead).toHaveLength(1);
  });
});
