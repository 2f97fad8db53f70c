/**
 * The relay's WebSocket endpoint for agents (relay/agent-endpoint.ts) over
 * loopback: which exchanges an agent may open, and the drain handshake.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { AgentEndpoint } from '../../../relay/agent-endpoint.js';
import { AgentRegistry, type ConnectedAgent } from '../../../relay/agent-registry.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { MuxSession } from '../../../src/mux/session.js';
import { CloseCode, PROTOCOL_VERSION, SUBPROTOCOL, type DrainMessage, type HelloMessage } from '../../../src/protocol.js';
import { createTokenVerifier, signAgentToken, type RevocationList } from '../../../src/token.js';
import { exchange, until } from '../../helpers/exchange.js';
import { TEST_SESSION_OPTIONS } from '../../helpers/ws-pair.js';
import { captureLog, relayConfig } from './clienttracker/helpers.js';

const SECRET = 'test-secret-0123456789';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const GATE = { limit: 4, maxWaiting: 2, maxWaitMs: 5000 };

async function endpoint(verify: { revoked?: RevocationList; keyId?: string } = {}) {
  const config = relayConfig({ tunnels: { cioc: { kind: 'clienttracker', clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } } } });
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  const { lines, log } = captureLog();
  const egress: { ex: Exchange; agent: ConnectedAgent }[] = [];
  const live = {
    config,
    verifier: createTokenVerifier({ secret: SECRET, ...(verify.keyId ? { id: verify.keyId } : {}) }, { issuer: config.auth.issuer, audience: config.auth.audience, revoked: verify.revoked }),
  };
  const ep = new AgentEndpoint({
    live,
    registry,
    log,
    publicUrlFor: (t) => `https://relay.example/t/${t}/`,
    gate: GATE,
    onAgentExchange: (ex, agent) => {
      egress.push({ ex, agent });
      ex.respond({ status: 200, headers: [] }, true);
    },
  });
  const server = http.createServer();
  server.on('upgrade', (req, socket, h) => {
    socket.on('error', () => socket.destroy()); // as relay/index.ts does: a waiting connection may be reset
    ep.handleUpgrade(req, socket, h);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/_ctbridge/agent`;
  cleanups.push(() => new Promise((resolve) => {
    ep.closeAll(1001, 'test over');
    server.closeAllConnections();
    server.close(() => resolve());
  }));

  /** An agent connection: a real agent-role session, not yet said hello. */
  const connect = async (protocols: string[] = [SUBPROTOCOL], given?: string) => {
    const ws = await dial(protocols, given);
    await once(ws, 'open');
    return session(ws);
  };
  /** A WebSocket dial with a valid token (or the one given), not yet open. */
  const dial = async (protocols: string[] = [SUBPROTOCOL], given?: string) => {
    const token = given ?? await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: 3600_000, key: { secret: SECRET, ...(verify.keyId ? { id: verify.keyId } : {}) } });
    const ws = new WebSocket(url, protocols, { headers: { authorization: `Bearer ${token}` } });
    ws.on('error', () => undefined); // a refused dial: the test reads the answer
    cleanups.push(async () => ws.terminate());
    return ws;
  };
  const session = (ws: WebSocket) => {
    const session = new MuxSession(ws, { ...TEST_SESSION_OPTIONS, role: 'agent' });
    const closed = once(session, 'close') as Promise<[number, string]>;
    const hello = async (): Promise<Record<string, unknown>> => {
      const message: HelloMessage = { type: 'hello', version: PROTOCOL_VERSION, tunnels: ['cioc'], software: 'test', hostname: 'h', window: 256 * 1024 };
      const ready = once(session, 'control') as Promise<[Record<string, unknown>]>;
      session.sendControl(message);
      return (await ready)[0];
    };
    return { session, closed, hello };
  };
  return { ep, registry, egress, lines, connect, dial, session, url, live };
}

describe('AgentEndpoint', () => {
  it('hands egress exchanges to the egress handler with the agent, and refuses any other kind from an agent', async () => {
    const { connect, egress, lines } = await endpoint();
    const { session, hello } = await connect();
    expect(await hello()).toMatchObject({ type: 'ready', version: PROTOCOL_VERSION, publicUrls: { cioc: 'https://relay.example/t/cioc/' } });
    const ok = await exchange(session, { kind: 'egress', tunnel: 'cioc', method: 'POST', target: '/is_in_request' }, '<x/>');
    expect(ok).toMatchObject({ status: 200, error: undefined });
    expect(egress).toHaveLength(1);
    expect(egress[0].agent).toMatchObject({ agentId: 'acme-1', tunnels: ['cioc'], draining: false });
    for (const kind of ['http', 'upgrade'] as const) {
      const refused = await exchange(session, { kind, tunnel: 'cioc' });
      expect(refused.response).toBeUndefined();
      expect(refused.error).toMatchObject({ code: 'CTB_TUNNEL_NOT_ALLOWED', message: `the relay takes only egress exchanges from agents, not ${kind}` });
    }
    expect(egress).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'agent exchange refused').map((l) => l.kind)).toEqual(['http', 'upgrade']);
  });

  it('refuses an egress exchange opened before the handshake is over', async () => {
    const { connect, egress } = await endpoint();
    const { session } = await connect();
    const early = await exchange(session, { kind: 'egress', tunnel: 'cioc', method: 'POST', target: '/is_in_request' }, '<x/>');
    expect(early.error?.code).toBe('CTB_TUNNEL_NOT_ALLOWED');
    expect(early.error?.message).toBe('the agent has not finished its handshake');
    expect(egress).toHaveLength(0);
  });

  it('answers drain with drained, and the agent is picked for no new exchange', async () => {
    const { connect, registry } = await endpoint();
    const { session, hello } = await connect();
    await hello();
    expect('agent' in registry.pick('cioc')).toBe(true);
    const drained = once(session, 'control') as Promise<[Record<string, unknown>]>;
    const drain: DrainMessage = { type: 'drain', reason: 'agent shutting down' };
    session.sendControl(drain);
    expect((await drained)[0]).toEqual({ type: 'drained' });
    expect(registry.pick('cioc')).toEqual({ draining: true });
    // The connection stays up for the exchanges already under way.
    expect(session.isOpen).toBe(true);
    expect((await exchange(session, { kind: 'egress', tunnel: 'cioc', method: 'POST', target: '/add_resource' }, '<x/>')).status).toBe(200);
  });

  // Regression (review): `agent verify --connect` told "token good" from "refused" by the wording of a 4403 reason.
  it('answers a hello that offers no tunnels with close code 4204 NO_TUNNELS_OFFERED and registers nothing', async () => {
    const { connect, registry, lines } = await endpoint();
    const { session, closed } = await connect();
    session.sendControl({ type: 'hello', version: PROTOCOL_VERSION, tunnels: [], software: 'test', hostname: 'h', window: 256 * 1024 });
    const [code] = await closed;
    expect(code).toBe(CloseCode.NO_TUNNELS_OFFERED);
    expect(registry.pick('cioc')).toEqual({ none: true });
    expect(lines.find((l) => l.msg === 'agent token checked: the hello offered no tunnels (agent verify --connect)')).toMatchObject({ level: 30, agentId: 'acme-1' });
  });

  it('refuses an agent that offers no ctbridge.2 subprotocol with 4426 and the reason', async () => {
    const { connect } = await endpoint();
    const { closed } = await connect(['ctbridge.1']);
    const [code, reason] = await closed;
    expect(code).toBe(4426);
    expect(reason).toBe(`agent speaks tunnel protocol ctbridge.1, this relay speaks ${SUBPROTOCOL}; run the same ctbridge version on both`);
  });

  it('lets agents past the handshake limit wait their turn in order, turns away those past the queue with 503 CTB_RELAY_BUSY and a Retry-After, and admits the waiting ones as room frees', async () => {
    const { connect, dial, session, lines } = await endpoint();
    const pending = await Promise.all(Array.from({ length: GATE.limit }, () => connect()));
    // Two more wait: their upgrade is not answered yet.
    const waiting = await Promise.all(Array.from({ length: GATE.maxWaiting }, () => dial()));
    const upgraded = waiting.map((ws) => once(ws, 'open'));
    // One more: refused at once, before any token check, with the code in a JSON body.
    const refused = await dial();
    const [, res] = (await once(refused, 'unexpected-response')) as [unknown, http.IncomingMessage];
    let body = '';
    for await (const chunk of res) body += String(chunk);
    expect(res.statusCode).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(30);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'CTB_RELAY_BUSY' } });
    expect(waiting.every((ws) => ws.readyState === WebSocket.CONNECTING)).toBe(true);
    // Two pending ones finish their handshake: the waiting ones are upgraded, and finish theirs.
    expect((await pending[0].hello()).type).toBe('ready');
    expect((await pending[1].hello()).type).toBe('ready');
    await Promise.all(upgraded);
    for (const ws of waiting) expect((await session(ws).hello()).type).toBe('ready');
    const line = await until(() => lines.find((l) => l.msg?.startsWith('agents turned away')), 'the turned-away log line', 5000);
    expect(line).toMatchObject({ turnedAway: 1, limit: GATE.limit });
  });

  it('does not let a waiting connection that closed hold up the ones behind it', async () => {
    const { connect, dial, session } = await endpoint();
    const pending = await Promise.all(Array.from({ length: GATE.limit }, () => connect()));
    const gone = await dial();
    const next = await dial();
    const upgraded = once(next, 'open');
    // Wait until the relay has it queued: a third dial is refused only once both wait.
    const probe = await dial();
    await once(probe, 'unexpected-response');
    gone.terminate();
    expect((await pending[0].hello()).type).toBe('ready');
    await upgraded;
    expect((await session(next).hello()).type).toBe('ready');
  });

  it('turns a connection that waited its turn away with 503 CTB_SHUTTING_DOWN once the node is shutting down', async () => {
    const { ep, connect, dial } = await endpoint();
    const pending = await Promise.all(Array.from({ length: GATE.limit }, () => connect()));
    const waiting = await dial();
    const answered = once(waiting, 'unexpected-response') as Promise<[unknown, http.IncomingMessage]>;
    await dial();
    // The relay has both queued once a dial past the queue is refused.
    await dial().then((ws) => once(ws, 'unexpected-response'));
    ep.goawayAll('test');
    // A handshake under way ends (its answer is not read: goaway may come first), and the next in line has its turn.
    void pending[0].hello();
    const [, res] = await answered;
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-ctbridge-error']).toBe('CTB_SHUTTING_DOWN');
  });

  // Regression (review): the close reason carried the token error's message, which names relay.yaml's keys
  // (auth.revoked.agents), its key ids and agent ids, to a caller that had proved nothing.
  describe('regression: what a caller with a bad token hears', () => {
    const LEAKS = ['auth.', 'relay.yaml', 'revoked', 'acme-bad', 'key-2027', 'signature', 'expired'];
    const PUBLIC = /^The relay refused the on-premise agent for this tunnel; give the request id to the operator \(request id ([0-9a-f]{16})\)$/;

    it.each([
      ['a token signed with another secret', async () => signAgentToken({ agentId: 'acme-bad', tunnels: ['cioc'], ttlMs: 3600_000, key: { secret: 'not-the-relay-secret-0123456789' } })],
      ['a revoked agent', async () => signAgentToken({ agentId: 'acme-bad', tunnels: ['cioc'], ttlMs: 3600_000, key: { secret: SECRET, id: 'key-2027' } })],
      ['a token naming a key the relay does not have', async () => signAgentToken({ agentId: 'acme-bad', tunnels: ['cioc'], ttlMs: 3600_000, key: { secret: SECRET, id: 'key-1999' } })],
      ['garbage', async () => 'not.a.jwt'],
    ])('%s: the public sentence and a request id; the why is in the log line with that id', async (_what, token) => {
      const { connect, lines } = await endpoint({ revoked: { agents: ['acme-bad'], tokens: [] }, keyId: 'key-2027' });
      const { closed } = await connect([SUBPROTOCOL], await token());
      const [code, reason] = await closed;
      expect(code).toBe(4401);
      expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
      const requestId = PUBLIC.exec(reason)?.[1];
      expect(requestId, reason).toBeDefined();
      for (const leak of LEAKS) expect(reason).not.toContain(leak);
      const line = await until(() => lines.find((l) => l.msg === 'agent refused: bad token'), 'the refusal log line', 5000);
      expect(line).toMatchObject({ requestId, code: 'CTB_TOKEN_INVALID' });
      expect(String((line.err as { message?: string }).message)).not.toBe('');
    });

    it('an agent cut off after a reload revoked it hears what its operator can do, not relay.yaml keys', async () => {
      const { connect, lines, ep, live } = await endpoint();
      const { hello, closed } = await connect();
      expect((await hello()).type).toBe('ready');
      live.verifier = createTokenVerifier({ secret: SECRET }, { issuer: live.config.auth.issuer, audience: live.config.auth.audience, revoked: { agents: ['acme-1'], tokens: [] } });
      expect(ep.recheckAll()).toBe(1);
      const [code, reason] = await closed;
      expect(code).toBe(4401);
      expect(reason).toMatch(/^The relay operator revoked this agent's token; ask them for a new one \(request id [0-9a-f]{16}\)$/);
      expect(reason).not.toMatch(/auth\.|relay\.yaml/);
      const line = lines.find((l) => l.msg === 'agent cut off: its token no longer holds');
      expect(line).toMatchObject({ reason: 'revoked', detail: expect.stringContaining('auth.revoked.agents') });
      expect(reason).toContain(String(line?.requestId));
    });
  });
});
