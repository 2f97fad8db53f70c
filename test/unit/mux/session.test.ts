import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { TunnelStream } from '../../../src/mux/stream.js';
import { sessionPair } from '../../helpers/ws-pair.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function pair(window = 256 * 1024) {
  const p = await sessionPair({ window });
  cleanup = p.close;
  return p;
}

function collect(stream: TunnelStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return once(stream, 'end').then(() => Buffer.concat(chunks));
}

describe('MuxSession', () => {
  it('opens a stream with metadata and carries bytes both ways with half-close', async () => {
    const { relay, agent } = await pair();
    agent.on('stream', (s) => {
      expect(s.meta).toEqual({ tunnel: 'ucws', requestId: 'r1' });
      s.pipe(s); // echo
    });
    const s = relay.openStream({ tunnel: 'ucws', requestId: 'r1' });
    const body = randomBytes(3 * 1024 * 1024);
    const got = collect(s);
    s.end(body);
    expect(createHash('sha256').update(await got).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('works with different windows on each side once they are exchanged', async () => {
    const p = await sessionPair({ window: 64 * 1024 });
    cleanup = p.close;
    // Rebuild the agent side's view: it runs a 1 MiB window, the relay 64 KiB.
    (p.agent as unknown as { options: { window: number } }).options.window = 1024 * 1024;
    p.agent.setPeerWindow(64 * 1024);
    p.relay.setPeerWindow(1024 * 1024);
    p.agent.on('stream', (s) => s.pipe(s));
    const s = p.relay.openStream({});
    const body = randomBytes(4 * 1024 * 1024);
    const got = collect(s);
    s.end(body);
    expect((await got).equals(body)).toBe(true);
  });

  it('uses odd ids on the relay side and even ids on the agent side', async () => {
    const { relay, agent } = await pair();
    agent.on('stream', (s) => s.resume());
    relay.on('stream', (s) => s.resume());
    expect(relay.openStream({}).id % 2).toBe(1);
    expect(agent.openStream({}).id % 2).toBe(0);
  });

  it('stalls only the stream whose reader is slow, holding at most one window', async () => {
    const window = 64 * 1024;
    const { relay, agent } = await pair(window);
    const incoming: TunnelStream[] = [];
    agent.on('stream', (s) => incoming.push(s));
    const slow = relay.openStream({ n: 'slow' });
    const fast = relay.openStream({ n: 'fast' });
    // Write 8 windows into the slow stream while its reader never reads.
    let accepted = 0;
    const chunk = Buffer.alloc(16 * 1024, 1);
    while (slow.write(chunk)) accepted += chunk.length;
    const [slowIn, fastIn] = await waitFor(() => (incoming.length === 2 ? incoming : null));
    // The receiver fills up to exactly one window, then the sender has no credit left.
    await waitFor(() => slowIn.readableLength === window);
    const fastPayload = randomBytes(1024 * 1024);
    const fastGot = collect(fastIn);
    fast.end(fastPayload);
    expect((await fastGot).equals(fastPayload)).toBe(true);
    // The slow receiver buffered no more than one window; the sender is blocked.
    expect(slowIn.readableLength).toBeLessThanOrEqual(window);
    expect(slow.writableNeedDrain).toBe(true);
    // Reading releases the sender.
    const drained = once(slow, 'drain');
    slowIn.resume();
    await drained;
    expect(accepted).toBeGreaterThan(0);
  });

  it('resets every stream when the WebSocket closes', async () => {
    const { relay, agent } = await pair();
    const opened = once(agent, 'stream');
    const s = relay.openStream({});
    s.write('x');
    await opened;
    const err = once(s, 'error');
    agent.close(1001, 'going away');
    const [e] = (await err) as [Error & { code: string }];
    expect(e.code).toBe('CTB_AGENT_DISCONNECTED');
    expect(e.message).toContain('1001');
  });

  it('carries a reset with its code to the other side', async () => {
    const { relay, agent } = await pair();
    agent.on('stream', (s) => s.destroy(Object.assign(new Error('nope'))));
    const s = relay.openStream({});
    const [e] = (await once(s, 'error')) as [Error & { code: string }];
    expect(e.code).toBe('CTB_AGENT_DISCONNECTED');
    expect(e.message).toBe('nope');
  });

  it('refuses streams over the incoming limit with CTB_AGENT_BUSY', async () => {
    const p = await sessionPair({ maxIncomingStreams: 1 });
    cleanup = p.close;
    p.agent.on('stream', () => {});
    p.relay.openStream({}).write('a');
    const second = p.relay.openStream({});
    const [e] = (await once(second, 'error')) as [Error & { code: string }];
    expect(e.code).toBe('CTB_AGENT_BUSY');
  });

  it('heartbeat drops a connection that went silent without a FIN (NAT dropped it)', async () => {
    const p = await sessionPair({ heartbeat: { interval: 50, timeout: 300 } });
    cleanup = p.close;
    const closed = once(p.relay, 'close');
    const started = Date.now();
    // The peer stops reading: no pongs, no frames, but no FIN either.
    (p.agentSocket as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const [code] = await closed;
    expect(code).toBe(1006);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('exchanges control messages', async () => {
    const { relay, agent } = await pair();
    const got = once(relay, 'control');
    agent.sendControl({ type: 'hello', tunnels: ['a'] });
    expect((await got)[0]).toEqual({ type: 'hello', tunnels: ['a'] });
  });
});

async function waitFor<T>(fn: () => T | null, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}
