/**
 * Two exchanges joined (what a relay node does with an exchange another node
 * forwards): caller ── link 1 ──▶ node ── link 2 ──▶ agent.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../../src/errors.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { splice } from '../../../src/mux/splice.js';
import { echo, exchange, head, outcome } from '../../helpers/exchange.js';
import { sessionPair } from '../../helpers/ws-pair.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** Link 1 (caller's node → this node) and link 2 (this node → agent); every exchange arriving on link 1 is spliced onward. */
async function chain(window = 64 * 1024) {
  const link1 = await sessionPair({ window });
  const link2 = await sessionPair({ window });
  closers.push(link1.close, link2.close);
  const spliced: { inbound: Exchange; outbound: Exchange }[] = [];
  link1.agent.on('exchange', (inbound) => {
    const outbound = link2.relay.request(inbound.head, inbound.peerEnded);
    spliced.push({ inbound, outbound });
    splice(inbound, outbound);
  });
  return { caller: link1.relay, agent: link2.agent, spliced };
}

describe('splice', () => {
  it('passes the head, the response and a body larger than either window both ways', async () => {
    const c = await chain(16 * 1024);
    echo(c.agent);
    const body = randomBytes(1024 * 1024);
    const result = await exchange(c.caller, { target: '/echo', method: 'POST' }, body);
    expect(result.status).toBe(200);
    expect(result.header('x-echo')).toBe('/echo');
    expect(result.body.equals(body)).toBe(true);
    expect(result.error).toBeUndefined();
  });

  it('passes a request without a body (OPEN with END)', async () => {
    const c = await chain();
    echo(c.agent);
    const result = await exchange(c.caller, { target: '/none' });
    expect(result.status).toBe(200);
    expect(result.body.length).toBe(0);
  });

  it("the agent's reset reaches the caller with the same error", async () => {
    const c = await chain();
    c.agent.on('exchange', (ex) => ex.reset(new CtbridgeError('CTB_TARGET_UNREACHABLE', 'connection refused')));
    const result = await exchange(c.caller, { target: '/x' });
    expect(result.status).toBe(0);
    expect(result.error).toMatchObject({ code: 'CTB_TARGET_UNREACHABLE' });
  });

  it("the caller's reset reaches the agent", async () => {
    const c = await chain();
    const arrived = once(c.agent, 'exchange') as Promise<[Exchange]>;
    const ex = c.caller.request(head({ method: 'POST' }), false);
    ex.send(Buffer.from('part'));
    const [agentSide] = await arrived;
    console.log("STEP arrived");
    const agentOutcome = outcome(agentSide);
    ex.reset(new CtbridgeError('CTB_CANCELLED', 'caller went away'));
    expect((await agentOutcome).error).toMatchObject({ code: 'CTB_CANCELLED' });
  });

  it('a slow agent stalls only its own pair: the node holds at most two windows of it, and the rest comes once the agent reads', async () => {
    const window = 16 * 1024;
    const c = await chain(window);
    // The agent takes bytes but grants no credit until it "reads" (handlers set as the exchange arrives: its first DATA comes in the same message).
    let received = 0;
    let inOrder = true;
    let reading = false;
    let unread = 0;
    const arrived = new Promise<Exchange>((resolve) => c.agent.once('exchange', (agentSide) => {
      agentSide.on('data', (chunk) => {
        for (let j = 0; j < chunk.length; j += 4096) if (chunk[j] !== Math.floor((received + j) / window)) inOrder = false;
        received += chunk.length;
        if (reading) agentSide.consumed(chunk.length);
        else unread += chunk.length;
      });
      resolve(agentSide);
    }));
    const ex = c.caller.request(head({ method: 'POST' }), false);
    const total = 8 * window;
    for (let i = 0; i < 8; i++) ex.send(Buffer.alloc(window, i));
    ex.end();
    const agentSide = await arrived;
    const ended = once(agentSide, 'end');
    // While the agent reads nothing, another exchange on the same links is served.
    const nextArrives = once(c.agent, 'exchange') as Promise<[Exchange]>;
    const other = outcome(c.caller.request(head({ target: '/other' }), true));
    const [otherAgent] = await nextArrives;
    otherAgent.respond({ status: 204, headers: [] }, true);
    expect((await other).status).toBe(204);
    // Flow control held: the agent got one window, the node took no more than that plus what it owes the caller.
    expect(received).toBeLessThanOrEqual(window);
    expect(c.spliced[0].inbound.bytesIn).toBeLessThanOrEqual(2 * window);
    // The agent reads: everything arrives, in order.
    reading = true;
    agentSide.consumed(unread);
    await ended;
    expect(received).toBe(total);
    expect(inOrder).toBe(true);
  });
});
