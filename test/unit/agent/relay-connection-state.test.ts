import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../../agent/index.js';
import { afterLinkEnd, canMove, isServing, stoppedFrom, type RelayConnectionState } from '../../../agent/relay-connection-state.js';
import { statusName } from '../../../agent/relay-status.js';
import { CloseCode } from '../../../src/protocol.js';
import { FakeRelay, LogCapture, freePort, testConfig } from './helpers.js';

const STATES: RelayConnectionState[] = ['idle', 'dialling', 'handshaking', 'ready', 'leaving', 'recycling', 'waiting', 'stopped'];
const REFUSED = 'relay connection refused a state change it does not allow (a bug in the agent)';

describe('relay connection states: the table', () => {
  it('allows the lifecycle moves', () => {
    const allowed: [RelayConnectionState, RelayConnectionState][] = [
      ['idle', 'dialling'], ['dialling', 'handshaking'], ['handshaking', 'ready'],
      ['dialling', 'waiting'], ['handshaking', 'waiting'], ['ready', 'waiting'], ['waiting', 'dialling'],
      ['ready', 'recycling'], ['recycling', 'waiting'],
      ['ready', 'leaving'], ['recycling', 'leaving'], ['leaving', 'stopped'],
      ['idle', 'stopped'], ['dialling', 'stopped'], ['handshaking', 'stopped'], ['waiting', 'stopped'],
      // a late ready on a link stopped during its handshake
      ['stopped', 'leaving'],
    ];
    for (const [from, to] of allowed) expect(canMove(from, to), `${from} -> ${to}`).toBe(true);
    // Nothing else: 17 moves of the 64 pairs.
    const all = STATES.flatMap((from) => STATES.filter((to) => canMove(from, to)).map((to) => `${from}->${to}`));
    expect(all.sort()).toEqual(allowed.map(([f, t]) => `${f}->${t}`).sort());
  });

  it('refuses moves that skip a step, dial after a stop, or stay put', () => {
    const refused: [RelayConnectionState, RelayConnectionState][] = [
      ['idle', 'ready'], ['dialling', 'ready'], ['waiting', 'ready'], ['idle', 'handshaking'],
      ['stopped', 'dialling'], ['leaving', 'waiting'], ['leaving', 'dialling'], ['stopped', 'waiting'],
      ['handshaking', 'recycling'], ['handshaking', 'leaving'], ['ready', 'stopped'],
      ...STATES.map((s): [RelayConnectionState, RelayConnectionState] => [s, s]),
    ];
    for (const [from, to] of refused) expect(canMove(from, to), `${from} -> ${to}`).toBe(false);
  });

  it('a stop keeps a serving link as leaving; anything else stops; every stop is an allowed move', () => {
    for (const s of STATES.filter((x) => x !== 'leaving' && x !== 'stopped')) {
      expect(stoppedFrom(s)).toBe(isServing(s) ? 'leaving' : 'stopped');
      expect(canMove(s, stoppedFrom(s)), s).toBe(true);
    }
  });

  it('a link that ends dials again unless the connection was told to stop', () => {
    for (const s of ['handshaking', 'ready', 'recycling'] as const) expect(afterLinkEnd(s)).toBe('waiting');
    expect(afterLinkEnd('leaving')).toBe('stopped');
    expect(afterLinkEnd('stopped')).toBe('stopped');
  });

  it('names each state as ctbridge status does', () => {
    expect(STATES.map((s) => statusName(s, true))).toEqual(['connecting', 'connecting', 'connecting', 'connected', 'connected', 'connected', 'waiting to reconnect', 'stopped']);
    // Closing its link: no longer connected.
    expect(statusName('ready', false)).toBe('connecting');
    expect(statusName('leaving', false)).toBe('stopped');
  });
});

describe('relay connection states: a real connection', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('moves only along the table through ready, a lost link, a redial and a close, and logs each move at debug', async () => {
    const relay = await FakeRelay.start();
    cleanups.push(() => relay.close());
    const logs = new LogCapture();
    const agent = await startAgent(await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' } }), logs.logger);
    cleanups.push(() => agent.close());
    const first = await relay.accept(0);
    await agent.whenReady();
    const lost = once(agent as never, 'disconnect');
    first.session.close(CloseCode.GOING_AWAY, 'relay restarting');
    await lost;
    await relay.accept(1);
    await logs.waitFor('relay connection state', (l) => l.from === 'waiting');
    await agent.whenReady();
    await agent.close();
    const moves = logs.lines.filter((l) => l.msg === 'relay connection state').map((l) => `${String(l.from)}->${String(l.to)}`);
    expect(moves).toEqual([
      'idle->dialling', 'dialling->handshaking', 'handshaking->ready',
      'ready->waiting', 'waiting->dialling', 'dialling->handshaking', 'handshaking->ready',
      'ready->leaving', 'leaving->stopped',
    ]);
    expect(logs.lines.filter((l) => l.msg === 'relay connection state').every((l) => l.level === 20)).toBe(true);
    expect(logs.find(REFUSED)).toBeUndefined();
  });

  it('a connection stopped during its handshake still takes a ready sent before drained (stopped -> leaving), then stops', async () => {
    const relay = await FakeRelay.start();
    cleanups.push(() => relay.close());
    const logs = new LogCapture();
    const agent = await startAgent(await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' } }), logs.logger);
    const conn = await relay.connection(0);
    await conn.hello;
    // The relay answered ready just before the agent's drain reached it: ready, then drained.
    conn.beforeDrained = () => conn.ready({ t1: 'https://relay.example/t/t1/' });
    await agent.close();
    const moves = logs.lines.filter((l) => l.msg === 'relay connection state').map((l) => `${String(l.from)}->${String(l.to)}`);
    expect(moves).toEqual(['idle->dialling', 'dialling->handshaking', 'handshaking->stopped', 'stopped->leaving', 'leaving->stopped']);
    expect(await conn.closed).toEqual([1000, 'agent shutting down']);
    expect(logs.find(REFUSED)).toBeUndefined();
  });

  it('a connection stopped while its relay is unreachable goes from waiting to stopped and dials no more', async () => {
    const port = await freePort();
    const logs = new LogCapture();
    const agent = await startAgent(await testConfig(`ws://127.0.0.1:${port}`, { t1: { target: 'http://127.0.0.1:9' } }), logs.logger);
    await logs.waitFor('relay connection state', (l) => l.to === 'waiting');
    await agent.close();
    const moves = logs.lines.filter((l) => l.msg === 'relay connection state').map((l) => `${String(l.from)}->${String(l.to)}`);
    expect(moves.at(-1)).toMatch(/^(waiting|dialling)->stopped$/);
    expect(logs.find(REFUSED)).toBeUndefined();
  });
});
