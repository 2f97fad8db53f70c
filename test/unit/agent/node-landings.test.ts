import { describe, expect, it } from 'vitest';
import { LANDINGS_BEFORE_SLOWING, NodeLandings } from '../../../agent/node-landings.js';

describe('NodeLandings', () => {
  it('waits 400 ms, doubling to 2 s, while connections land on the same served node', () => {
    const l = new NodeLandings();
    expect([1, 2, 3, 4, 5].map(() => l.landedOnServed('node-1').delayMs)).toEqual([400, 800, 1600, 2000, 2000]);
  });

  it(`tries once a minute after ${LANDINGS_BEFORE_SLOWING} landings in a row on one node, and says so once`, () => {
    const l = new NodeLandings();
    const dials = Array.from({ length: LANDINGS_BEFORE_SLOWING + 2 }, () => l.landedOnServed('node-1'));
    expect(dials.map((d) => d.slowedNow).filter(Boolean)).toHaveLength(1);
    expect(dials[LANDINGS_BEFORE_SLOWING - 1]).toEqual({ delayMs: 60_000, slowedNow: true });
    expect(dials[LANDINGS_BEFORE_SLOWING]).toEqual({ delayMs: 60_000, slowedNow: false });
  });

  it('regression: landings spread over the served nodes (round robin with one node missing) never slow to once a minute', () => {
    const l = new NodeLandings();
    // Worst case for a balancer that spreads: the served nodes alternate, a hundred times.
    const delays = Array.from({ length: 100 }, (_, i) => l.landedOnServed(i % 2 ? 'node-1' : 'node-3').delayMs);
    expect(Math.max(...delays)).toBe(400);
  });

  it('starts over after a reset (a new node reached, or the cluster changed)', () => {
    const l = new NodeLandings();
    for (let i = 0; i < LANDINGS_BEFORE_SLOWING; i++) l.landedOnServed('node-1');
    l.reset();
    expect(l.landedOnServed('node-1')).toEqual({ delayMs: 400, slowedNow: false });
  });
});
