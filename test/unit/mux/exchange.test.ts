/**
 * Exchange flow control over a real WebSocket pair: credit per exchange,
 * granted back only as the reader hands bytes on, and the peer's
 * flow-control violations.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../../src/errors.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { decodeFrames, encodeHeader, encodeJson, encodeWindow, FLAG_END, FrameType, parseJsonPayload, parseWindowPayload, type Frame } from '../../../src/mux/frame.js';
import { head, outcome, until } from '../../helpers/exchange.js';
import { rawPeer, sessionPair } from '../../helpers/ws-pair.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

const WINDOW = 64 * 1024;

async function pair(window = WINDOW) {
  const p = await sessionPair({ window });
  cleanup = p.close;
  return p;
}

/** The agent side's next incoming exchange, with what it has received and not yet consumed. */
function nextIncoming(agent: Awaited<ReturnType<typeof pair>>['agent']): Promise<{ ex: Exchange; chunks: Buffer[]; size: () => number }> {
  return new Promise((resolve) => {
    agent.once('exchange', (ex) => {
      const chunks: Buffer[] = [];
      ex.on('data', (c) => chunks.push(c));
      resolve({ ex, chunks, size: () => chunks.reduce((n, c) => n + c.length, 0) });
    });
  });
}

describe('Exchange credit', () => {
  it("sends exactly one window of request body to a reader that consumes nothing, then only as it consumes", async () => {
    const { relay, agent } = await pair();
    const incoming = nextIncoming(agent);
    const ex = relay.request(head({ method: 'POST' }), false);
    const chunk = Buffer.alloc(16 * 1024, 1);
    const results: boolean[] = [];
    for (let i = 0; i < 4; i++) results.push(ex.send(chunk));
    expect(results).toEqual([true, true, true, true]);
    expect(ex.bytesOut).toBe(WINDOW);
    // Out of credit: the next chunk is queued, and send() says stop.
    expect(ex.send(chunk)).toBe(false);
    expect(ex.bytesOut).toBe(WINDOW);
    const reader = await incoming;
    await until(() => reader.size() === WINDOW, 'one window received');
    expect(reader.ex.bytesIn).toBe(WINDOW);

    // Consuming less than a quarter window grants nothing yet; reaching it sends one WINDOW frame, and the queued chunk flows.
    const drained = once(ex, 'drain');
    reader.ex.consumed(WINDOW / 4 - 1);
    reader.ex.consumed(1);
    await drained;
    expect(ex.bytesOut).toBe(WINDOW + chunk.length);
    await until(() => reader.size() === WINDOW + chunk.length, 'the queued chunk received');
    // That grant is spent: stop again.
    expect(ex.send(chunk)).toBe(false);

    // A reader that consumes everything lets the rest through; the receiver never holds more than a window unconsumed.
    let consumed = WINDOW / 4;
    let maxUnconsumed = 0;
    reader.ex.on('data', () => {
      maxUnconsumed = Math.max(maxUnconsumed, reader.size() - consumed);
    });
    const ended = once(reader.ex, 'end');
    const body = randomBytes(1024 * 1024);
    ex.once('drain', () => {
      ex.send(body);
      ex.end();
    });
    const consumeAll = (): void => {
      const n = reader.size() - consumed;
      consumed += n;
      reader.ex.consumed(n);
    };
    reader.ex.on('data', () => setImmediate(consumeAll));
    consumeAll();
    await ended;
    expect(reader.size()).toBe(WINDOW + 2 * chunk.length + body.length);
    expect(Buffer.concat(reader.chunks).subarray(-body.length).equals(body)).toBe(true);
    expect(maxUnconsumed).toBeLessThanOrEqual(WINDOW);
  });

  it('holds END back until the queued body has gone out', async () => {
    const { relay, agent } = await pair();
    const incoming = nextIncoming(agent);
    const ex = relay.request(head({ method: 'POST' }), false);
    const body = randomBytes(3 * WINDOW);
    expect(ex.send(body)).toBe(false);
    ex.end();
    expect(ex.ended).toBe(true);
    const reader = await incoming;
    let endedAt = -1;
    reader.ex.on('end', () => (endedAt = reader.size()));
    // What arrived with the OPEN, then everything as it comes.
    reader.ex.consumed(reader.size());
    reader.ex.on('data', (c) => reader.ex.consumed(c.length));
    await once(reader.ex, 'end');
    expect(endedAt).toBe(body.length);
    expect(Buffer.concat(reader.chunks).equals(body)).toBe(true);
  });

  it('stalls only the exchange whose reader is slow, holding at most one window', async () => {
    const { relay, agent } = await pair();
    const readers: { ex: Exchange; size: () => number; chunks: Buffer[] }[] = [];
    agent.on('exchange', (ex) => {
      const chunks: Buffer[] = [];
      ex.on('data', (c) => chunks.push(c));
      readers.push({ ex, chunks, size: () => chunks.reduce((n, c) => n + c.length, 0) });
    });
    const slow = relay.request(head({ target: '/slow' }), false);
    const fast = relay.request(head({ target: '/fast' }), false);
    let accepted = 0;
    const chunk = Buffer.alloc(16 * 1024, 1);
    while (slow.send(chunk)) accepted += chunk.length;
    expect(accepted).toBe(WINDOW);
    const [slowIn, fastIn] = await until(() => (readers.length === 2 ? readers : null));
    await until(() => slowIn.size() === WINDOW);
    // The fast exchange carries 1 MiB past the stalled one.
    fastIn.ex.on('data', (c) => fastIn.ex.consumed(c.length));
    const fastEnded = once(fastIn.ex, 'end');
    const payload = randomBytes(1024 * 1024);
    fast.send(payload);
    fast.end();
    await fastEnded;
    expect(Buffer.concat(fastIn.chunks).equals(payload)).toBe(true);
    // The slow receiver holds exactly one window; its sender is still held.
    expect(slowIn.size()).toBe(WINDOW);
    expect(slow.bytesOut).toBe(WINDOW);
    // Reading releases the sender.
    const drained = once(slow, 'drain');
    slowIn.ex.consumed(slowIn.size());
    await drained;
  });

  it('drops queued bytes on reset, and the peer hears the reset with its code', async () => {
    const { relay, agent } = await pair();
    const incoming = nextIncoming(agent);
    const ex = relay.request(head(), false);
    ex.send(Buffer.alloc(2 * WINDOW));
    const reader = await incoming;
    await until(() => reader.size() === WINDOW);
    const reset = once(reader.ex, 'reset') as Promise<[CtbridgeError]>;
    ex.reset(new CtbridgeError('CTB_CANCELLED', 'caller gone'));
    expect(ex.closed).toBe(true);
    expect(ex.send(Buffer.from('x'))).toBe(false);
    const [err] = await reset;
    expect(err).toMatchObject({ code: 'CTB_CANCELLED', message: 'caller gone' });
    expect(reader.size()).toBe(WINDOW); // the queued second window never went out
  });

  it("emits 'close' once, after both directions have ended", async () => {
    const { relay, agent } = await pair();
    const incoming = nextIncoming(agent);
    const ex = relay.request(head(), false);
    let closes = 0;
    ex.on('close', () => closes++);
    const reader = await incoming;
    reader.ex.respond({ status: 200, headers: [] });
    reader.ex.send(Buffer.from('answer'));
    reader.ex.end();
    const got = outcome(ex);
    await once(ex, 'end');
    expect(ex.closed).toBe(false); // our direction is still open
    ex.end();
    expect((await got).text).toBe('answer');
    expect(closes).toBe(1);
    expect(relay.exchangeCount).toBe(0);
  });
});

describe('Exchange: flow-control violations by the peer', () => {
  async function peerOf(role: 'relay' | 'agent' = 'relay') {
    const p = await rawPeer(role, { window: WINDOW });
    cleanup = p.close;
    const frames: Frame[] = [];
    p.peer.on('message', (d: Buffer) => decodeFrames(Buffer.from(d), (f) => frames.push(f)));
    const problems: string[] = [];
    p.session.on('problem', (m) => problems.push(m));
    return { ...p, frames, problems, send: (...parts: (Buffer | Buffer[])[]) => p.peer.send(Buffer.concat(parts.flat())) };
  }

  const data = (id: number, bytes: Buffer | string, flags = 0) => [encodeHeader(FrameType.DATA, flags, id, Buffer.byteLength(bytes)), Buffer.from(bytes)];

  it('a WINDOW beyond the announced window resets the exchange with CTB_PROTOCOL and is reported', async () => {
    const p = await peerOf();
    const ex = p.session.request(head(), false);
    const reset = once(ex, 'reset') as Promise<[CtbridgeError]>;
    p.send(encodeWindow(ex.id, 1)); // full credit already: one byte more is over
    const [err] = await reset;
    expect(err).toMatchObject({ code: 'CTB_PROTOCOL' });
    expect(err.message).toBe(`the peer broke the tunnel protocol on exchange 1: WINDOW of 1 bytes would give ${WINDOW + 1} bytes of credit, over the ${WINDOW}-byte window`);
    expect(p.problems).toEqual([`exchange 1 (http, tunnel t1): WINDOW of 1 bytes would give ${WINDOW + 1} bytes of credit, over the ${WINDOW}-byte window`]);
    await until(() => p.frames.some((f) => f.type === FrameType.RESET));
    expect(parseJsonPayload(p.frames.find((f) => f.type === FrameType.RESET)!)).toMatchObject({ code: 'CTB_PROTOCOL' });
    expect(p.session.isOpen).toBe(true);
  });

  it('a WINDOW of 0 is a violation; a WINDOW returning spent credit is not', async () => {
    const p = await peerOf();
    const ok = p.session.request(head(), false); // 1
    ok.send(Buffer.alloc(WINDOW));
    expect(ok.send(Buffer.alloc(10))).toBe(false);
    const drained = once(ok, 'drain');
    p.send(encodeWindow(ok.id, WINDOW));
    await drained;
    const bad = p.session.request(head(), false); // 3
    const reset = once(bad, 'reset') as Promise<[CtbridgeError]>;
    p.send(encodeWindow(bad.id, 0));
    expect((await reset)[0].message).toContain('WINDOW of 0 bytes');
    expect(ok.closed).toBe(false);
  });

  it('DATA beyond the granted window resets the exchange', async () => {
    const p = await peerOf('agent');
    const incoming = new Promise<Exchange>((resolve) => p.session.on('exchange', resolve));
    p.send(encodeJson(FrameType.OPEN, 0, 1, head()), data(1, Buffer.alloc(WINDOW)));
    const ex = await incoming;
    const reset = once(ex, 'reset') as Promise<[CtbridgeError]>;
    p.send(data(1, 'x'));
    const [err] = await reset;
    expect(err.message).toBe(`the peer broke the tunnel protocol on exchange 1: ${WINDOW + 1} bytes sent over a ${WINDOW}-byte window`);
    expect(p.problems).toHaveLength(1);
  });

  it('DATA within credit the receiver granted back is fine', async () => {
    const p = await peerOf('agent');
    let got = 0;
    const incoming = new Promise<Exchange>((resolve) =>
      p.session.on('exchange', (ex) => {
        ex.on('data', (c) => (got += c.length));
        resolve(ex);
      }));
    p.send(encodeJson(FrameType.OPEN, 0, 1, head()), data(1, Buffer.alloc(WINDOW)));
    const ex = await incoming;
    expect(got).toBe(WINDOW);
    ex.consumed(WINDOW / 2);
    await until(() => p.frames.some((f) => f.type === FrameType.WINDOW));
    expect(parseWindowPayload(p.frames.find((f) => f.type === FrameType.WINDOW)!)).toBe(WINDOW / 2);
    const ended = once(ex, 'end');
    p.send(data(1, Buffer.alloc(WINDOW / 2), FLAG_END));
    await ended;
    expect(got).toBe(WINDOW + WINDOW / 2);
    expect(p.problems).toEqual([]);
  });

  it('DATA after END resets the exchange with CTB_PROTOCOL', async () => {
    const p = await peerOf();
    const ex = p.session.request(head(), false);
    const events: string[] = [];
    ex.on('end', () => events.push('end'));
    const reset = once(ex, 'reset') as Promise<[CtbridgeError]>;
    p.send(encodeJson(FrameType.REPLY, 0, ex.id, { status: 200, headers: [] }), data(ex.id, 'body', FLAG_END), data(ex.id, 'more'));
    const [err] = await reset;
    expect(events).toEqual(['end']);
    expect(err.message).toBe('the peer broke the tunnel protocol on exchange 1: DATA after END');
    expect(p.problems).toEqual(['exchange 1 (http, tunnel t1): DATA after END']);
    await until(() => p.frames.some((f) => f.type === FrameType.RESET && f.id === 1));
    expect(p.session.isOpen).toBe(true);
  });
});
