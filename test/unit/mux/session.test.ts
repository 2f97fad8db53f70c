import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../../src/errors.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { decodeFrames, encodeHeader, encodeJson, encodeWindow, FLAG_END, FrameType, parseJsonPayload, type Frame } from '../../../src/mux/frame.js';
import type { ResponseHead } from '../../../src/mux/heads.js';
import { echo, exchange, head, outcome, until } from '../../helpers/exchange.js';
import { rawPeer, sessionPair } from '../../helpers/ws-pair.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function pair(...args: Parameters<typeof sessionPair>) {
  const p = await sessionPair(...args);
  cleanup = p.close;
  return p;
}

async function hostile(role: 'relay' | 'agent' = 'relay', overrides: Parameters<typeof rawPeer>[1] = {}) {
  const p = await rawPeer(role, overrides);
  cleanup = p.close;
  const frames: Frame[] = [];
  const arrived: (() => void)[] = [];
  p.peer.on('message', (data: Buffer) => {
    // Copy: the frames outlive the message.
    decodeFrames(Buffer.from(data), (f) => frames.push(f));
    for (const wake of arrived.splice(0)) wake();
  });
  const problems: string[] = [];
  p.session.on('problem', (m) => problems.push(m));
  const closed = once(p.session, 'close') as Promise<[number, string]>;
  return {
    ...p,
    frames,
    problems,
    closed,
    send: (...parts: (Buffer | Buffer[])[]) => p.peer.send(Buffer.concat(parts.flat())),
    /** The first frame the peer received that matches, now or later. */
    frame: async (match: (f: Frame) => boolean): Promise<Frame> => {
      for (;;) {
        const f = frames.find(match);
        if (f) return f;
        await new Promise<void>((resolve) => arrived.push(resolve));
      }
    },
  };
}

const open = (id: number, value: unknown, flags = FLAG_END) => encodeJson(FrameType.OPEN, flags, id, value);
const reply = (id: number, value: ResponseHead, flags = 0) => encodeJson(FrameType.REPLY, flags, id, value);
const data = (id: number, bytes: string, flags = 0) => [encodeHeader(FrameType.DATA, flags, id, Buffer.byteLength(bytes)), Buffer.from(bytes)];
const control = (json: string) => [encodeHeader(FrameType.CONTROL, 0, 0, Buffer.byteLength(json)), Buffer.from(json)];

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('MuxSession: exchanges', () => {
  it('carries a request head with raw header pairs and a body, and the response head and body back', async () => {
    const { relay, agent } = await pair();
    const requestHeaders = ['Host', 'relay.example', 'Set-Cookie', 'a=1', 'x-MiXeD', 'v', 'set-cookie', 'b=2', 'X-Latin1', 'caf\u00e9'];
    const responseHeaders = ['Set-Cookie', 'c=3; Path=/', 'Content-Type', 'text/plain', 'Set-Cookie', 'd=4'];
    const received = new Promise<{ ex: Exchange; body: Buffer }>((resolve) => {
      agent.on('exchange', (ex) => {
        const chunks: Buffer[] = [];
        ex.on('data', (c) => {
          chunks.push(c);
          ex.consumed(c.length);
        });
        ex.on('end', () => {
          ex.respond({ status: 418, statusText: 'Short And Stout', headers: responseHeaders });
          ex.send(Buffer.from('tea'));
          ex.end();
          resolve({ ex, body: Buffer.concat(chunks) });
        });
      });
    });
    const pending = exchange(relay, { method: 'PATCH', target: '/a%2Fb?x=1', headers: requestHeaders, requestId: 'r-42' }, 'hello body');
    const { ex, body } = await received;
    expect(ex.head).toEqual({ kind: 'http', tunnel: 't1', method: 'PATCH', target: '/a%2Fb?x=1', headers: requestHeaders, requestId: 'r-42' });
    expect(ex.incoming).toBe(true);
    expect(body.toString()).toBe('hello body');
    const got = await pending;
    expect(got.error).toBeUndefined();
    expect(got.response).toEqual({ status: 418, statusText: 'Short And Stout', headers: responseHeaders });
    expect(got.text).toBe('tea');
    expect(pending.exchange.bytesOut).toBe(10);
    expect(pending.exchange.bytesIn).toBe(3);
    expect(ex.closed).toBe(true);
    expect(relay.exchangeCount).toBe(0);
    expect(agent.exchangeCount).toBe(0);
  });

  it('carries END on OPEN and REPLY: a request and a response without a body', async () => {
    const { relay, agent } = await pair();
    agent.on('exchange', (ex) => {
      expect(ex.peerEnded).toBe(true);
      ex.respond({ status: 204, headers: [] }, true);
    });
    const got = await exchange(relay, { method: 'DELETE' });
    expect(got).toMatchObject({ status: 204, text: '', error: undefined });
  });

  it('carries 4 MiB both ways (echo) with half-close', async () => {
    const { relay, agent } = await pair();
    echo(agent);
    const body = randomBytes(4 * 1024 * 1024);
    const got = await exchange(relay, { target: '/echo' }, body);
    expect(got.header('x-echo')).toBe('/echo');
    expect(sha(got.body)).toBe(sha(body));
  });

  it('works with different windows on each side once they are exchanged', async () => {
    const { relay, agent } = await pair({}, { relay: { window: 64 * 1024 }, agent: { window: 1024 * 1024 } });
    agent.setPeerWindow(64 * 1024);
    relay.setPeerWindow(1024 * 1024);
    echo(agent);
    const body = randomBytes(4 * 1024 * 1024);
    expect((await exchange(relay, {}, body)).body.equals(body)).toBe(true);
  });

  it('ignores a peer window outside 16 KiB..16 MiB', async () => {
    const { relay, agent } = await pair({ window: 64 * 1024 });
    for (const bad of [1024, 32 * 1024 * 1024, 65_536.5, '1048576', undefined]) relay.setPeerWindow(bad);
    agent.on('exchange', () => undefined); // accepts and never reads
    const ex = relay.request(head(), false);
    let accepted = 0;
    while (ex.send(Buffer.alloc(1024))) accepted += 1024;
    expect(accepted).toBe(64 * 1024);
  });

  it('uses odd ids on the relay side and even ids on the agent side', async () => {
    const { relay, agent } = await pair();
    echo(agent);
    echo(relay);
    const ids = [relay.request(head(), true).id, relay.request(head(), true).id, agent.request(head({ kind: 'egress' }), true).id, agent.request(head({ kind: 'egress' }), true).id];
    expect(ids).toEqual([1, 3, 2, 4]);
  });

  it('counts outgoing exchanges (the relay load figure) apart from incoming ones', async () => {
    const { relay, agent } = await pair();
    const incoming: Exchange[] = [];
    agent.on('exchange', (ex) => incoming.push(ex));
    relay.on('exchange', (ex) => incoming.push(ex));
    relay.request(head(), false);
    relay.request(head(), false);
    agent.request(head({ kind: 'egress' }), false);
    await until(() => incoming.length === 3);
    expect(relay.exchangeCount).toBe(3);
    expect(relay.outgoingCount).toBe(2);
    expect(agent.outgoingCount).toBe(1);
  });

  it('carries a reset with its code, message, hint and params to the other side', async () => {
    const { relay, agent } = await pair();
    agent.on('exchange', (ex) => ex.reset(new CtbridgeError('CTB_TARGET_TIMEOUT', 'nope', { hint: 'raise it', params: { seconds: 2.5 } })));
    const got = await exchange(relay);
    expect(got.response).toBeUndefined();
    expect(got.error).toBeInstanceOf(CtbridgeError);
    expect(got.error).toMatchObject({ code: 'CTB_TARGET_TIMEOUT', message: 'nope', hint: 'raise it', params: { seconds: 2.5 } });
    expect(relay.exchangeCount).toBe(0);
  });

  it('refuses exchanges over the incoming limit with CTB_AGENT_BUSY, and takes new ones once one is over', async () => {
    const { relay, agent } = await pair({ maxIncoming: 1 });
    const held: Exchange[] = [];
    agent.on('exchange', (ex) => held.push(ex));
    const first = exchange(relay);
    const second = await exchange(relay);
    expect(second.error?.code).toBe('CTB_AGENT_BUSY');
    expect(second.error?.message).toBe('too many concurrent exchanges (limit 1)');
    await until(() => held.length === 1);
    held[0].respond({ status: 200, headers: [] }, true);
    expect((await first).status).toBe(200);
    const third = exchange(relay);
    await until(() => held.length === 2);
    held[1].respond({ status: 201, headers: [] }, true);
    expect((await third).status).toBe(201);
  });

  it('resets an exchange nobody listens for with CTB_SHUTTING_DOWN', async () => {
    const { relay } = await pair();
    const got = await exchange(relay);
    expect(got.error?.code).toBe('CTB_SHUTTING_DOWN');
  });

  it('exchanges control messages', async () => {
    const { relay, agent } = await pair();
    const got = once(relay, 'control');
    const hello = { type: 'hello', tunnels: ['a'] };
    agent.sendControl(hello);
    expect((await got)[0]).toEqual({ type: 'hello', tunnels: ['a'] });
  });
});

describe('MuxSession: losing the connection', () => {
  it.each([
    ['relay', 'CTB_AGENT_DISCONNECTED'],
    ['agent', 'CTB_RELAY_UNREACHABLE'],
  ] as const)('aborts every open exchange of the %s side, both directions, with %s', async (side, code) => {
    const { relay, agent } = await pair();
    const incoming: Exchange[] = [];
    agent.on('exchange', (ex) => incoming.push(ex));
    relay.on('exchange', (ex) => incoming.push(ex));
    const toAgent = relay.request(head(), false);
    const toRelay = agent.request(head({ kind: 'egress' }), false);
    await until(() => incoming.length === 2);
    const mine = side === 'relay' ? [toAgent, incoming.find((e) => e.id === toRelay.id)!] : [toRelay, incoming.find((e) => e.id === toAgent.id)!];
    const errors = mine.map((ex) => once(ex, 'reset') as Promise<[CtbridgeError]>);
    const closes = mine.map((ex) => once(ex, 'close'));
    const other = side === 'relay' ? agent : relay;
    other.close(1001, 'going away');
    for (const e of errors) {
      const [err] = await e;
      expect(err.code).toBe(code);
      expect(err.message).toBe('the tunnel connection closed (code 1001: going away) during the exchange');
    }
    await Promise.all(closes);
    const session = side === 'relay' ? relay : agent;
    expect(session.exchangeCount).toBe(0);
    expect(session.isOpen).toBe(false);
    let thrown: unknown;
    try {
      session.request(head(), true);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code, message: 'the tunnel connection is closed' });
  });

  it('heartbeat drops a connection that went silent without a FIN (NAT dropped it)', async () => {
    const p = await pair({ heartbeat: { interval: 50, timeout: 300 } });
    const closed = once(p.relay, 'close');
    // The peer stops reading: no pongs, no frames, but no FIN either.
    (p.agentSocket as unknown as { _socket: Socket })._socket.pause();
    const [code] = await closed;
    expect(code).toBe(1006);
  });

  it('a busy link that goes silent is probed and declared dead long before the heartbeat timeout (blackholed link)', async () => {
    const timing = { interval: 10_000, timeout: 60_000, probeAfter: 200, probeTimeout: 500 };
    const p = await pair({ heartbeat: timing });
    const started = Date.now();
    const relayClosed = once(p.relay, 'close') as Promise<[number, string]>;
    const agentClosed = once(p.agent, 'close') as Promise<[number, string]>;
    const held = new Promise<void>((resolve) => p.agent.once('exchange', () => resolve()));
    const pending = exchange(p.relay, {}, 'open');
    await held;
    // Both directions go silent: neither side reads, and no FIN is sent.
    (p.agentSocket as unknown as { _socket: Socket })._socket.pause();
    (p.relaySocket as unknown as { _socket: Socket })._socket.pause();
    const [[code, reason], [agentCode, agentReason]] = await Promise.all([relayClosed, agentClosed]);
    expect(Date.now() - started).toBeLessThan(30_000); // far below the 60 s heartbeat timeout
    expect([code, agentCode]).toEqual([1006, 1006]);
    expect(reason).toMatch(/^link dead: no answer to a ping within \d+ ms while exchanges waited/);
    expect(agentReason).toMatch(/^link dead: no answer to a ping/);
    expect((await pending).error).toMatchObject({ code: 'CTB_AGENT_DISCONNECTED' });
  });

  it('whenIdle() resolves when the last exchange ends, at once when none is open, and false after its time limit', async () => {
    const p = await pair();
    expect(await p.relay.whenIdle(0)).toBe(true);
    const held = new Promise<Exchange>((resolve) => p.agent.once('exchange', resolve));
    const pending = exchange(p.relay, {}, 'open');
    const ex = await held;
    expect(await p.relay.whenIdle(10)).toBe(false);
    const idle = p.relay.whenIdle(60_000);
    ex.respond({ status: 204, headers: [] }, true);
    pending.exchange.end();
    expect((await pending).status).toBe(204);
    expect(await idle).toBe(true);
  });

  it('a busy link whose peer is slow but answers pings stays up', async () => {
    const p = await pair({ heartbeat: { interval: 10_000, timeout: 60_000, probeAfter: 100, probeTimeout: 300 } });
    let pings = 0;
    p.agentSocket.on('ping', () => pings++);
    const held = new Promise<Exchange>((resolve) => p.agent.once('exchange', resolve));
    const pending = exchange(p.relay, {}, 'open');
    const ex = await held;
    // The agent says nothing on the exchange; the relay probes, the agent's WebSocket answers each probe.
    await until(() => pings >= 3, 'three probes answered', 20_000);
    expect(p.relay.isOpen).toBe(true);
    ex.respond({ status: 204, headers: [] }, true);
    pending.exchange.end();
    expect((await pending).status).toBe(204);
  });
});

describe('MuxSession: hostile peers', () => {
  it('a text WebSocket message closes the connection with 1002', async () => {
    const h = await hostile();
    h.peer.send('GET / HTTP/1.1');
    const reason = 'protocol error: received a text WebSocket message; ctbridge sends binary frames only';
    expect(await h.peerClosed).toEqual([1002, reason]);
    expect((await h.closed)[0]).toBe(1002);
    expect(h.problems).toEqual([reason]);
  });

  it('a frame that cannot be decoded closes the connection with 1002 and the reason', async () => {
    const h = await hostile();
    h.send(Buffer.from([FrameType.DATA, 0, 0, 0]));
    expect(await h.peerClosed).toEqual([1002, 'protocol error: truncated frame header at byte 0 of a 4-byte message']);
  });

  it('DATA for an exchange id the peer never opened closes the connection with 1002', async () => {
    const h = await hostile('relay');
    h.send(data(4, 'smuggled'));
    expect(await h.peerClosed).toEqual([1002, 'protocol error: DATA frame for exchange 4, which was never opened']);
    expect(h.problems).toEqual(['protocol error: DATA frame for exchange 4, which was never opened']);
  });

  it('a REPLY for an id of ours that was never allocated closes the connection with 1002', async () => {
    const h = await hostile('relay');
    h.session.request(head(), true); // id 1
    h.send(reply(9, { status: 200, headers: [] }));
    expect(await h.peerClosed).toEqual([1002, 'protocol error: REPLY frame for exchange 9, which was never opened']);
  });

  it('frames for an exchange that just closed are ignored (they cross on the wire)', async () => {
    const h = await hostile('relay');
    const ex = h.session.request(head(), false); // id 1
    await h.frame((f) => f.type === FrameType.OPEN);
    ex.reset(new CtbridgeError('CTB_CANCELLED', 'caller gone'));
    h.send(reply(1, { status: 200, headers: [] }), data(1, 'late'), encodeWindow(1, 10));
    // A control message after them still arrives: the connection survived.
    const got = once(h.session, 'control');
    h.send(control('{"type":"after"}'));
    expect((await got)[0]).toEqual({ type: 'after' });
    expect(h.session.isOpen).toBe(true);
    expect(h.problems).toEqual([]);
  });

  it.each([
    ['of the wrong parity', [open(1, head())]],
    ['reused', [open(2, head()), open(2, head())]],
    ['lower than one already opened', [open(4, head()), open(2, head())]],
  ])('an OPEN with an id %s closes the connection with 1002', async (_what, frames) => {
    const h = await hostile('relay');
    h.session.on('exchange', (ex) => ex.respond({ status: 200, headers: [] }, true));
    h.send(...frames);
    const [code, reason] = await h.peerClosed;
    expect(code).toBe(1002);
    expect(reason).toMatch(/^protocol error: the peer opened exchange \d, which is not a new id of its parity$/);
  });

  it('an agent-role session refuses an OPEN with an even id', async () => {
    const h = await hostile('agent');
    h.session.on('exchange', (ex) => ex.respond({ status: 200, headers: [] }, true));
    h.send(open(2, head()));
    expect(await h.peerClosed).toEqual([1002, 'protocol error: the peer opened exchange 2, which is not a new id of its parity']);
  });

  it('a malformed OPEN head resets only that exchange; the others on the session keep working', async () => {
    const h = await hostile('relay');
    const seen: number[] = [];
    h.session.on('exchange', (ex) => {
      seen.push(ex.id);
      const answer = (): void => ex.respond({ status: 200, headers: ['X-Id', String(ex.id)] }, true);
      ex.on('data', (c) => ex.consumed(c.length));
      // An OPEN with END has no 'end' event to come: its body is over before the exchange is handed out.
      if (ex.peerEnded) answer();
      else ex.on('end', answer);
    });
    h.send(open(2, head()), open(4, head({ target: 'no-slash' })), open(6, head(), 0), open(8, 'not an object'));
    const reset = await h.frame((f) => f.type === FrameType.RESET && f.id === 4);
    expect(parseJsonPayload(reset)).toEqual({ code: 'CTB_PROTOCOL', message: 'malformed request head: the request target is not a path starting with "/"' });
    const reset8 = await h.frame((f) => f.type === FrameType.RESET && f.id === 8);
    expect(parseJsonPayload(reset8)).toMatchObject({ code: 'CTB_PROTOCOL', message: 'malformed request head: the request head is not a JSON object' });
    expect(parseJsonPayload(await h.frame((f) => f.type === FrameType.REPLY && f.id === 2))).toEqual({ status: 200, headers: ['X-Id', '2'] });
    // Exchange 6 is still open and working: its body and END arrive after the bad heads; DATA for the reset exchange 4 is ignored.
    h.send(data(4, 'ignored', FLAG_END), data(6, 'body', FLAG_END));
    expect(parseJsonPayload(await h.frame((f) => f.type === FrameType.REPLY && f.id === 6))).toEqual({ status: 200, headers: ['X-Id', '6'] });
    expect(seen).toEqual([2, 6]);
    expect(h.problems).toEqual([
      'exchange 4: malformed request head: the request target is not a path starting with "/"',
      'exchange 8: malformed request head: the request head is not a JSON object',
    ]);
    expect(h.session.isOpen).toBe(true);
  });

  it('a malformed REPLY head resets that exchange with CTB_PROTOCOL', async () => {
    const h = await hostile('relay');
    const ex = h.session.request(head(), true);
    const got = outcome(ex);
    h.send(reply(1, { status: 200, headers: ['X-Injected', 'a\r\nb'] }));
    expect((await got).error).toMatchObject({ code: 'CTB_PROTOCOL', message: 'the peer broke the tunnel protocol on exchange 1: malformed response head: header X-Injected has an invalid value' });
    expect(parseJsonPayload(await h.frame((f) => f.type === FrameType.RESET && f.id === 1))).toMatchObject({ code: 'CTB_PROTOCOL' });
    expect(h.problems).toEqual(['exchange 1 (http, tunnel t1): malformed response head: header X-Injected has an invalid value']);
  });

  it('a second REPLY, DATA before the REPLY, and a REPLY on an exchange the peer opened each reset the exchange', async () => {
    const h = await hostile('relay');
    const a = outcome(h.session.request(head(), true)); // 1
    const b = outcome(h.session.request(head(), true)); // 3
    const incoming = new Promise<Exchange>((resolve) => h.session.on('exchange', resolve));
    h.send(reply(1, { status: 200, headers: [] }), reply(1, { status: 200, headers: [] }), data(3, 'early'), open(2, head(), 0));
    const c = outcome(await incoming);
    h.send(reply(2, { status: 200, headers: [] }));
    expect((await a).error?.message).toBe('the peer broke the tunnel protocol on exchange 1: a second REPLY');
    expect((await b).error?.message).toBe('the peer broke the tunnel protocol on exchange 3: DATA before the REPLY');
    expect((await c).error?.message).toBe('the peer broke the tunnel protocol on exchange 2: a REPLY on an exchange the peer opened');
    expect(h.session.isOpen).toBe(true);
  });

  it.each(['null', '[1,2]', '"hello"', '{"type":5}', '{not json'])(
    'regression: a CONTROL message %s (not a JSON object with a type) closes the connection with 1002 and a reason',
    async (json) => {
      const h = await hostile('relay');
      const controls: unknown[] = [];
      h.session.on('control', (m) => controls.push(m));
      h.send(control(json));
      const [code, reason] = await h.closed;
      expect(code).toBe(1002);
      expect(reason).toMatch(/control message that is not a JSON object with a type/);
      expect(controls).toEqual([]);
      expect(h.problems).toEqual(['protocol error: a control message that is not a JSON object with a type']);
    },
  );
});

describe('MuxSession: write backpressure', () => {
  it("holds exchanges' send() while the peer does not read its socket, resumes when it reads again, with bounded memory", async () => {
    // Windows far larger than the body: only the connection can hold the sender back.
    const window = 128 * 1024 * 1024;
    const { relay, agent, relaySocket, agentSocket } = await pair({ window });
    const TOTAL = 64 * 1024 * 1024;
    let received = 0;
    const ended: Promise<unknown>[] = [];
    agent.on('exchange', (ex) => {
      ex.on('data', (c) => {
        received += c.length;
        ex.consumed(c.length);
      });
      ended.push(once(ex, 'end'));
    });
    const exchanges = [relay.request(head(), false), relay.request(head(), false)];
    const internals = (relay as unknown as { out: { unsent: number; queuedBytes: number } }).out;
    let maxQueued = 0;
    const observe = (): void => {
      maxQueued = Math.max(maxQueued, internals.unsent + internals.queuedBytes, relaySocket.bufferedAmount);
    };
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    /** Sends a chunk on every exchange; the ones whose send() returned false. */
    const round = (): Exchange[] => {
      const held: Exchange[] = [];
      for (const ex of exchanges) {
        if (!ex.send(chunk)) held.push(ex);
        sent += chunk.length;
        observe();
      }
      return held;
    };

    // The peer stops reading: the kernel's buffers fill, then the session's, then send() says stop.
    const tcp = (agentSocket as unknown as { _socket: Socket })._socket;
    tcp.pause();
    let drained: Promise<unknown>;
    for (;;) {
      const held = round();
      if (held.length === 0) continue;
      drained = Promise.all(held.map((ex) => once(ex, 'drain')));
      // No 'drain' can be awaited while the peer reads nothing: give the kernel a moment to take more, then call it stuck.
      const progressed = await Promise.race([drained.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 300))]);
      observe();
      if (!progressed) break;
      expect(sent).toBeLessThan(TOTAL / 2); // stuck long before: buffers are bounded
    }
    const sentWhilePaused = sent;
    expect(sentWhilePaused).toBeLessThan(TOTAL / 2);
    expect(relay.writable).toBe(false);
    // Every exchange is held back, not just the one that hit the limit.
    for (const ex of exchanges) {
      if (ex.send(chunk)) throw new Error(`exchange ${ex.id} accepted bytes over a full connection`);
      sent += chunk.length;
    }
    drained = Promise.all(exchanges.map((ex) => once(ex, 'drain')));

    // The peer reads again: both exchanges drain, and the rest goes through.
    tcp.resume();
    await drained;
    while (sent < TOTAL) {
      const held = round();
      if (held.length > 0) await Promise.all(held.map((ex) => once(ex, 'drain')));
    }
    for (const ex of exchanges) ex.end();
    await Promise.all(ended);
    expect(received).toBe(sent);
    // The sender never held more than its high-water mark (4 MiB) plus a frame.
    expect(maxQueued).toBeLessThan(4 * 1024 * 1024 + 128 * 1024);
  }, 60_000);
});
