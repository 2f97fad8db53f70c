/**
 * The relay's admission of agent handshakes in a reconnect storm
 * (relay/handshake-gate.ts): a few under way, the next ones waiting in
 * order, the rest turned away with a Retry-After computed from the
 * measured rate. Pure: a fake clock and fake sockets.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HandshakeGate, MIN_RATE_PER_S } from '../../../relay/handshake-gate.js';

/** What the gate uses of a socket: 'close', and destroyed. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function setup(opts: { limit?: number; maxWaiting?: number; maxWaitMs?: number } = {}) {
  let now = 0;
  const gate = new HandshakeGate({ limit: 2, maxWaiting: 3, maxWaitMs: 5000, ...opts, now: () => now });
  const started: number[] = [];
  const busy: number[] = [];
  const sockets: FakeSocket[] = [];
  const enter = (i: number): void => {
    sockets[i] = new FakeSocket();
    gate.enter(sockets[i] as unknown as Duplex, () => started.push(i), () => busy.push(i));
  };
  return { gate, started, busy, sockets, enter, advance: (ms: number) => (now += ms) };
}

describe('HandshakeGate', () => {
  it('starts up to the limit at once, queues the next ones in arrival order, and starts them as handshakes finish', () => {
    const { gate, started, busy, enter } = setup();
    for (let i = 0; i < 5; i++) enter(i);
    expect(started).toEqual([0, 1]);
    expect(gate.queued).toBe(3);
    expect(busy).toEqual([]);
    gate.done();
    expect(started).toEqual([0, 1, 2]);
    gate.done();
    gate.done();
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(gate.underWay).toBe(2);
    expect(gate.queued).toBe(0);
  });

  it('turns a connection away at once when maxWaiting are already waiting', () => {
    const { gate, started, busy, enter } = setup();
    for (let i = 0; i < 6; i++) enter(i);
    expect(started).toEqual([0, 1]);
    expect(busy).toEqual([5]);
    expect(gate.queued).toBe(3);
  });

  it('skips a connection that closed while it waited', () => {
    const { gate, started, sockets, enter } = setup();
    for (let i = 0; i < 4; i++) enter(i);
    sockets[2].destroy();
    gate.done();
    expect(started).toEqual([0, 1, 3]);
    expect(gate.queued).toBe(0);
  });

  // Regression (review): sockets that closed while queued still counted toward maxWaiting (10,000), so agents that
  // gave up (timeouts.connect) kept live ones turned away with CTB_RELAY_BUSY while the queue was in fact empty.
  it('drops a connection that closed while it waited from the count: the room it held takes a new one', () => {
    const { gate, started, busy, sockets, enter } = setup();
    for (let i = 0; i < 5; i++) enter(i); // 0, 1 under way; 2, 3, 4 waiting: the queue is full
    sockets[3].destroy();
    sockets[4].destroy();
    expect(gate.queued).toBe(1);
    enter(5);
    enter(6);
    expect(busy).toEqual([]);
    expect(gate.queued).toBe(3);
    enter(7);
    expect(busy).toEqual([7]);
    // Its close listener goes with it: a waiter that started no longer hears its socket.
    gate.done();
    gate.done();
    expect(started).toEqual([0, 1, 2, 5]);
    expect(sockets[2]!.listenerCount('close')).toBe(0);
    expect(sockets[6]!.listenerCount('close')).toBe(1);
  });

  it('does not hold on to many connections that closed while they waited', () => {
    const { gate, sockets, enter } = setup({ limit: 1, maxWaiting: 10 });
    enter(0);
    for (let i = 1; i <= 5000; i++) {
      enter(i);
      sockets[i]!.destroy();
    }
    expect(gate.queued).toBe(0);
    expect((gate as unknown as { waiting: unknown[]; head: number }).waiting.length).toBeLessThan(2 * 10 + 1024 + 2);
  });

  it('turns away a connection that waited longer than maxWaitMs when its turn comes (its agent is about to give up)', () => {
    const { gate, started, busy, enter, advance } = setup();
    for (let i = 0; i < 3; i++) enter(i);
    advance(5001);
    enter(3);
    gate.done();
    expect(busy).toEqual([2]);
    expect(started).toEqual([0, 1, 3]);
  });

  it('measures the rate of finished handshakes; an idle stretch does not lower it', () => {
    const { gate, enter, advance } = setup({ limit: 1000, maxWaiting: 10_000 });
    expect(gate.ratePerSecond()).toBe(MIN_RATE_PER_S);
    for (let i = 0; i < 1000; i++) enter(i);
    // 2,000 per second for two seconds.
    for (let ms = 0; ms < 2000; ms += 10) {
      advance(10);
      for (let k = 0; k < 20; k++) {
        gate.done();
        enter(0);
      }
    }
    expect(gate.ratePerSecond()).toBeGreaterThan(1900);
    expect(gate.ratePerSecond()).toBeLessThan(2100);
    advance(60_000);
    expect(gate.ratePerSecond()).toBeGreaterThan(1900);
  });

  it('asks turned-away agents back in the order they were turned away, at the rate measured', () => {
    const { gate, enter, advance, busy } = setup({ limit: 100, maxWaiting: 4000, maxWaitMs: 5000 });
    for (let i = 0; i < 100; i++) enter(i);
    // 2,000 per second measured.
    for (let ms = 0; ms < 2000; ms += 10) {
      advance(10);
      for (let k = 0; k < 20; k++) {
        gate.done();
        enter(0);
      }
    }
    const rate = gate.ratePerSecond();
    expect(rate).toBeGreaterThan(1900);
    expect(rate).toBeLessThan(2200);
    // The queue fills (4,000: the relay serves them within 5 s), then 5,000 are turned away.
    for (let i = 0; i < 4000; i++) enter(1000 + i);
    const asked: number[] = [];
    for (let i = 0; i < 5000; i++) {
      enter(10_000 + i);
      asked.push(gate.retryAfterSeconds());
    }
    expect(busy).toHaveLength(5000);
    // The first ones the next second; the k-th after k / rate seconds: spread, not all at the time the whole queue needs.
    expect(asked[0]).toBe(1);
    expect(asked[4999]).toBe(Math.ceil(5000 / rate));
    expect(asked.filter((s) => s === 1).length).toBeGreaterThan(1800);
    // Room again: the count starts over.
    for (let i = 0; i < 10; i++) gate.done();
    enter(20_000);
    enter(20_001);
    expect(busy).toHaveLength(5000);
  });

  // Regression (issue 13, reconnect storm): every turned-away agent was asked for the time the whole queue needed
  // at the rate measured while the relay was still starting (5 s), and the relay idled at a quarter of a core for
  // the last 4 s of a 15,000-agent storm while they slept.
  it('leans early while the rate is unknown or low: at least MIN_RATE_PER_S, and only the agents turned away count', () => {
    const { gate, enter } = setup({ limit: 10, maxWaiting: 5000, maxWaitMs: 10_000 });
    for (let i = 0; i < 5010; i++) enter(i);
    enter(6000);
    expect(gate.retryAfterSeconds()).toBe(1);
    for (let i = 0; i < 1500; i++) enter(7000 + i);
    expect(gate.retryAfterSeconds()).toBe(Math.ceil(1501 / MIN_RATE_PER_S));
  });

  it('asks for the time beyond maxWaitMs when the queue holds more than the relay serves within it', () => {
    const { gate, enter } = setup({ limit: 10, maxWaiting: 20_000, maxWaitMs: 5000 });
    // 8,010 ahead at 1,000 per second: 3,010 of them would wait longer than 5 s.
    for (let i = 0; i < 8010; i++) enter(i);
    expect(gate.retryAfterSeconds()).toBe(Math.ceil(3010 / MIN_RATE_PER_S));
  });

  // Regression (review): when the node began shutting down, each queued connection was refused inside the start of the
  // one before it (start -> refusal -> done -> next -> start ...), so the stack grew with the queue (up to 10,000).
  it('starts a queue whose starts end at once without growing the stack, and startAll() answers every waiter', () => {
    let now = 0;
    const gate = new HandshakeGate({ limit: 1, maxWaiting: 200_000, maxWaitMs: 5000, now: () => now });
    let started = 0;
    let endAtOnce = false;
    const enter = (): void => gate.enter(new FakeSocket() as unknown as Duplex, () => {
      started++;
      if (endAtOnce) gate.done();
    }, () => undefined);
    for (let i = 0; i < 100_001; i++) enter();
    expect(started).toBe(1);
    endAtOnce = true;
    gate.done();
    expect(started).toBe(100_001);
    expect(gate.queued).toBe(0);
    expect(gate.underWay).toBe(0);
    // startAll: past the limit, every waiter at once.
    endAtOnce = false;
    for (let i = 0; i < 5; i++) enter();
    expect(gate.underWay).toBe(1);
    endAtOnce = true;
    gate.startAll();
    expect(started).toBe(100_006);
    expect(gate.queued).toBe(0);
    expect(gate.underWay).toBe(1);
  });

  it('never asks for more than maxWaitMs: turned-away agents come back while the queue still has work', () => {
    const { gate, enter } = setup({ limit: 1, maxWaiting: 100_000, maxWaitMs: 5000 });
    for (let i = 0; i < 100_000; i++) enter(i);
    expect(gate.retryAfterSeconds()).toBe(5);
  });
});
