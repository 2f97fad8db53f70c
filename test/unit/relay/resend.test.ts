/**
 * Re-sending a public request whose exchange died with its link
 * (relay/resend.ts): the decision as a pure function, the kept body, and
 * PublicRequests with two agents on real sessions, one of whose links
 * drops while it holds requests.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Admission, type PeerNodes } from '../../../relay/admission.js';
import { AgentRegistry } from '../../../relay/agent-registry.js';
import { httpKind } from '../../../relay/http-kind.js';
import { RelayMetrics } from '../../../relay/metrics.js';
import { PublicRequests } from '../../../relay/public-requests.js';
import { CtbridgeError } from '../../../src/errors.js';
import type { MuxSession } from '../../../src/mux/session.js';
import { BodyCopy, keepsBody, MAX_RESENDS, resendReason, type ExchangeEnd } from '../../../relay/resend.js';
import { until } from '../../helpers/exchange.js';
import { twoAgentsForWeb } from '../../helpers/two-agents.js';
import { sessionPair } from '../../helpers/ws-pair.js';
import { request, type Reply } from '../../helpers/http.js';
import { captureLog, listen, relayConfig } from './clienttracker/helpers.js';

const base: ExchangeEnd = { method: 'GET', code: 'CTB_AGENT_DISCONNECTED', viaNode: false, body: 'empty', responseStarted: false, resends: 0 };

describe('resendReason', () => {
  it.each(['GET', 'HEAD', 'OPTIONS'])('re-sends a %s whose link dropped before the response began', (method) => {
    expect(resendReason({ ...base, method })).toBe('agent_disconnected');
    expect(resendReason({ ...base, method, body: 'kept' })).toBe('agent_disconnected');
    expect(resendReason({ ...base, method, viaNode: true })).toBe('agent_disconnected');
  });

  it.each(['POST', 'PATCH', 'PUT', 'DELETE', 'CONNECT', 'TRACE', 'get'])('never re-sends a %s whose link dropped: the agent may have delivered it', (method) => {
    expect(resendReason({ ...base, method })).toBeUndefined();
    expect(resendReason({ ...base, method, body: 'kept' })).toBeUndefined();
  });

  it('never re-sends once the response began', () => {
    expect(resendReason({ ...base, responseStarted: true })).toBeUndefined();
    expect(resendReason({ ...base, code: 'CTB_AGENT_NOT_CONNECTED', viaNode: true, responseStarted: true })).toBeUndefined();
  });

  it('never re-sends a body that is still arriving or was not kept', () => {
    for (const body of ['arriving', 'not_kept'] as const) {
      expect(resendReason({ ...base, body })).toBeUndefined();
      expect(resendReason({ ...base, method: 'POST', code: 'CTB_AGENT_NOT_CONNECTED', viaNode: true, body })).toBeUndefined();
    }
  });

  it(`re-sends at most ${MAX_RESENDS} times`, () => {
    expect(resendReason({ ...base, resends: MAX_RESENDS - 1 })).toBe('agent_disconnected');
    expect(resendReason({ ...base, resends: MAX_RESENDS })).toBeUndefined();
    expect(resendReason({ ...base, code: 'CTB_AGENT_NOT_CONNECTED', viaNode: true, resends: MAX_RESENDS })).toBeUndefined();
  });

  it('re-sends any method another node turned away before an agent saw it, but not that code from an agent', () => {
    for (const method of ['GET', 'POST', 'DELETE']) expect(resendReason({ ...base, method, code: 'CTB_AGENT_NOT_CONNECTED', viaNode: true })).toBe('node_turned_away');
    expect(resendReason({ ...base, code: 'CTB_AGENT_NOT_CONNECTED', viaNode: false })).toBeUndefined();
  });

  it.each(['CTB_TARGET_UNREACHABLE', 'CTB_TARGET_TIMEOUT', 'CTB_REQUEST_TIMEOUT', 'CTB_PROTOCOL', 'CTB_CANCELLED', 'CTB_SHUTTING_DOWN'])('never re-sends after %s', (code) => {
    expect(resendReason({ ...base, code })).toBeUndefined();
  });
});

describe('BodyCopy', () => {
  it('keeps a body within its limit, whole once it has ended', () => {
    const copy = new BodyCopy(10);
    expect(copy.state).toBe('arriving');
    copy.add(Buffer.from('hello'));
    copy.add(Buffer.from('world'));
    expect(copy.bytes).toBeUndefined();
    copy.end();
    expect(copy.state).toBe('kept');
    expect(copy.bytes?.toString()).toBe('helloworld');
  });

  it('keeps nothing once the body is over its limit', () => {
    const copy = new BodyCopy(10);
    copy.add(Buffer.alloc(11));
    copy.end();
    expect(copy.state).toBe('not_kept');
    expect(copy.bytes).toBeUndefined();
  });

  it('is used only for methods that may be re-sent', () => {
    expect(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'].filter(keepsBody)).toEqual(['GET', 'HEAD', 'OPTIONS']);
  });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/**
 * A relay front with two agents for tunnel `web`: `held` never answers
 * (its exchanges wait until the test drops its link), `live` answers 200
 * with the method and the request body.
 */
async function twoAgents() {
  const { config, lines, log, registry, heldPair, livePair, held, close } = await twoAgentsForWeb();
  const metrics = new RelayMetrics(registry);
  livePair.agent.on('exchange', (ex) => {
    const chunks: Buffer[] = [];
    const answer = (): void => {
      ex.respond({ status: 200, headers: ['content-type', 'text/plain'] });
      if (ex.head.method !== 'HEAD') ex.send(Buffer.from(`${ex.head.method} ${Buffer.concat(chunks).toString()}`));
      ex.end();
    };
    ex.on('data', (c) => {
      chunks.push(c);
      ex.consumed(c.length);
    });
    if (ex.peerEnded) answer();
    else ex.once('end', answer);
  });
  heldPair.relay.once('close', () => registry.remove(held));
  const requests = new PublicRequests({ admission: new Admission({ config }, registry, false), log, kindOf: () => httpKind, metrics });
  const front = await listen(requests.handle);
  cleanups.push(async () => {
    await front.close();
    await close();
  });
  /**
   * Sends `send()` until one such request waits at the held agent (round
   * robin sends every other one there); returns every answer to come.
   */
  const holdAt = async (send: () => Promise<Reply>): Promise<Promise<Reply>[]> => {
    const answers: Promise<Reply>[] = [];
    for (let i = 0; i < 4; i++) {
      const arrived = once(heldPair.agent, 'exchange').then(() => 'held');
      const answer = send();
      answers.push(answer);
      if ((await Promise.race([arrived, answer.then(() => 'answered')])) === 'held') return answers;
    }
    throw new Error('no request reached the held agent');
  };
  return { front, lines, metrics, holdAt, dropHeld: () => heldPair.agentSocket.terminate() };
}

describe('PublicRequests re-sends when an agent link drops', () => {
  it('re-sends GETs (with and without a kept body), HEAD and OPTIONS waiting on the dropped link to the other agent', async () => {
    const { front, lines, metrics, holdAt, dropHeld } = await twoAgents();
    const sends = [
      () => request(`${front.url}/t/web/a`),
      () => request(`${front.url}/t/web/b`, { body: 'query body', headers: { 'content-type': 'text/plain', 'content-length': '10' } }),
      () => request(`${front.url}/t/web/c`, { method: 'HEAD' }),
      () => request(`${front.url}/t/web/d`, { method: 'OPTIONS' }),
    ];
    const answers: Promise<Reply>[] = [];
    for (const send of sends) answers.push(...(await holdAt(send)));
    dropHeld();
    const done = await Promise.all(answers);
    expect(done.map((a) => a.status)).toEqual(done.map(() => 200));
    const bodies = done.map((a) => a.text);
    expect(bodies).toContain('GET query body');
    expect(bodies).toContain('OPTIONS ');
    const resent = lines.filter((l) => l.msg === 'request re-sent to another agent');
    expect(resent).toHaveLength(4);
    expect(resent[0]).toMatchObject({ reason: 'agent_disconnected', code: 'CTB_AGENT_DISCONNECTED', fromAgentId: 'held', toAgentId: 'live', resends: 1 });
    expect(new Set(resent.map((l) => l.requestId)).size).toBe(4);
    expect(await metrics.registry.getSingleMetricAsString('ctbridge_requests_resent_total')).toContain('ctbridge_requests_resent_total{reason="agent_disconnected"} 4');
  });

  it('answers a POST or PUT waiting on the dropped link with 502 CTB_AGENT_DISCONNECTED, never re-sent', async () => {
    const { front, lines, holdAt, dropHeld } = await twoAgents();
    const answers = [
      ...(await holdAt(() => request(`${front.url}/t/web/p`, { method: 'POST', body: 'x' }))),
      ...(await holdAt(() => request(`${front.url}/t/web/q`, { method: 'PUT', body: 'y' }))),
    ];
    dropHeld();
    const done = await Promise.all(answers);
    const failed = done.filter((a) => a.status !== 200);
    expect(failed).toHaveLength(2);
    for (const a of failed) expect(a).toMatchObject({ status: 502, headers: { 'x-ctbridge-error': 'CTB_AGENT_DISCONNECTED' } });
    expect(lines.some((l) => l.msg === 'request re-sent to another agent')).toBe(false);
  });

  it('does not re-send a GET whose body is over the kept size', async () => {
    const { front, holdAt, dropHeld } = await twoAgents();
    const answers = await holdAt(() => request(`${front.url}/t/web/big`, { body: Buffer.alloc(65 * 1024, 0x61), headers: { 'content-length': String(65 * 1024) } }));
    dropHeld();
    const done = await Promise.all(answers);
    expect(done.filter((a) => a.status === 502).map((a) => a.headers['x-ctbridge-error'])).toEqual(['CTB_AGENT_DISCONNECTED']);
  });
});

/**
 * A relay node with no agent of its own, and two other nodes for tunnel
 * `web`: b1 fails every exchange (its agent's link dropped: '/lost'; it has
 * no agent any more: '/gone'), b2 answers 200. Each request is offered to
 * b1 first.
 */
async function twoNodes() {
  const config = relayConfig({ tunnels: { web: { kind: 'http' } } });
  const { lines, log } = captureLog();
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  const b1 = await sessionPair();
  const b2 = await sessionPair();
  b1.agent.on('exchange', (ex) => {
    const code = ex.head.target === '/gone' ? 'CTB_AGENT_NOT_CONNECTED' : 'CTB_AGENT_DISCONNECTED';
    ex.reset(new CtbridgeError(code, 'as the test says'));
  });
  b2.agent.on('exchange', (ex) => {
    const answer = (): void => {
      ex.respond({ status: 200, headers: [] });
      ex.send(Buffer.from(`b2 ${ex.head.method}`));
      ex.end();
    };
    ex.on('data', (c) => ex.consumed(c.length));
    if (ex.peerEnded) answer();
    else ex.once('end', answer);
  });
  const nodes: { nodeId: string; session: MuxSession }[] = [{ nodeId: 'b1', session: b1.relay }, { nodeId: 'b2', session: b2.relay }];
  let cursor = 0;
  const peers: PeerNodes = {
    pick: (_tunnel, avoid) => {
      const candidates = nodes.filter((n) => n.nodeId !== avoid);
      return candidates[cursor++ % candidates.length];
    },
    knows: () => true,
  };
  const requests = new PublicRequests({ admission: new Admission({ config }, registry, false, peers), log, kindOf: () => httpKind });
  const front = await listen(requests.handle);
  cleanups.push(async () => {
    await front.close();
    await b1.close();
    await b2.close();
  });
  const send = (path: string, options: Parameters<typeof request>[1] = {}): Promise<Reply> => {
    cursor = 0;
    return request(`${front.url}/t/web${path}`, options);
  };
  return { lines, send };
}

describe('PublicRequests re-sends across relay nodes', () => {
  it('re-sends a GET whose agent link dropped behind another node, and a bodiless POST a node turned away', async () => {
    const { lines, send } = await twoNodes();
    expect(await send('/lost')).toMatchObject({ status: 200, text: 'b2 GET' });
    expect(await send('/gone', { method: 'POST' })).toMatchObject({ status: 200, text: 'b2 POST' });
    const resent = lines.filter((l) => l.msg === 'request re-sent to another agent');
    expect(resent.map((l) => [l.reason, l.fromNode, l.toNode])).toEqual([
      ['agent_disconnected', 'b1', 'b2'],
      ['node_turned_away', 'b1', 'b2'],
    ]);
  });

  it('answers 502 CTB_AGENT_DISCONNECTED for a POST whose agent link dropped behind another node', async () => {
    const { lines, send } = await twoNodes();
    const a = await send('/lost', { method: 'POST', body: 'x', headers: { 'content-length': '1' } });
    expect(a).toMatchObject({ status: 502, headers: { 'x-ctbridge-error': 'CTB_AGENT_DISCONNECTED' } });
    expect(lines.some((l) => l.msg === 'request re-sent to another agent')).toBe(false);
  });
});
