import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/backoff.js';

/** A backoff on a fake clock: `wait(ms)` is what the caller slept before the next attempt. */
function backoff(random: () => number) {
  let t = 1000;
  const b = new Backoff(500, 10_000, random, () => t);
  return { b, wait: (ms: number) => (t += ms) };
}

describe('Backoff', () => {
  it('doubles its ceiling from initialDelay to maxDelay while the waits are taken in full', () => {
    const { b: b2, wait: wait2 } = backoff(() => 1);
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      const d = b2.next();
      seen.push(d);
      wait2(d);
    }
    // Waits taken in full: the outage grows as fast as the ceiling, so the attempt rule decides (500 · 2ⁿ).
    expect(seen).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  // Regression (issue 13, reconnect storm): an agent that drew short waits climbed to 8 s ceilings during a
  // 2 s relay restart, and the last agents of a 15,000-agent storm came back 8 s after the relay listened.
  it('never lets the ceiling run ahead of twice the outage: short draws keep the waits short', () => {
    const { b, wait } = backoff(() => 0.01);
    const ceilings: number[] = [];
    for (let i = 0; i < 10; i++) {
      const d = b.next();
      ceilings.push(d / 0.01);
      wait(d);
    }
    // Ten attempts within 0.1 s of outage: the ceiling stays at initialDelay, where it was 2^n × 500 ms.
    expect(Math.max(...ceilings)).toBeLessThanOrEqual(500);
  });

  it('starts over after reset(), outage clock included', () => {
    const { b, wait } = backoff(() => 1);
    for (let i = 0; i < 5; i++) wait(b.next());
    b.reset();
    wait(60_000);
    expect(b.next()).toBe(500);
  });

  it('waits are uniform in [0, ceiling] (full jitter)', () => {
    const { b } = backoff(() => 0);
    expect(b.next()).toBe(0);
  });
});
