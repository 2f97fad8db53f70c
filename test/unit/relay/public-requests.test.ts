/**
 * The relay's public side for plain requests (relay/public-requests.ts)
 * behind a real HTTP server, a real tunnel session and a real agent
 * (TunnelRequests) in front of a fake provider: each request one exchange,
 * the clienttracker kind's XML answers, the http kind's pass-through, and
 * the handler's own timeouts and refusals.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TunnelRequests } from '../../../agent/tunnel-requests.js';
import { Admission } from '../../../relay/admission.js';
import { AgentRegistry, type ConnectedAgent } from '../../../relay/agent-registry.js';
import { createKindHandlers } from '../../../relay/clienttracker/index.js';
import { httpKind } from '../../../relay/http-kind.js';
import { RelayInspect } from '../../../relay/inspect.js';
import type { InspectEntry } from '../../../src/inspect/entry.js';
import { PublicRequests } from '../../../relay/public-requests.js';
import type { KindHandler } from '../../../relay/tunnel-kind.js';
import { parseAgentConfig } from '../../../src/config/index.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { validateXml } from '../../../src/xml/validate.js';
import { until } from '../../helpers/exchange.js';
import { sessionPair } from '../../helpers/ws-pair.js';
import { request } from '../../helpers/http.js';
import { captureLog, errorTextOf, listen, relayConfig } from './clienttracker/helpers.js';

const NS = 'http://clienttracker.cioc.ca/schema/';
const REGISTRATION = `<?xml version="1.0" encoding="UTF-8"?>
<response xmlns="${NS}">
  <resourceType>
    <name>CIOC</name>
    <launchURL>http://cioc.intranet/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>
    <resourceInfoURL>http://cioc.intranet/ct/ctfetch.asp?num=[ID]</resourceInfoURL>
  </resourceType>
</response>
`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

async function relayWithAgent() {
  const config = relayConfig({
    tunnels: {
      cioc: { kind: 'clienttracker', clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } },
      // Its own tunnel for the timeout test: on a loaded machine the first registration (which loads libxml2) can take over 0.5 s.
      quick: { kind: 'clienttracker', timeouts: { request: '500ms' }, clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } },
      down: { kind: 'clienttracker', clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } },
      web: { kind: 'http', maxRequestBody: '1KiB' },
    },
  });
  const { lines, log } = captureLog();
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  const pair = await sessionPair();
  // The provider behind the agent.
  const pending = new Set<http.ServerResponse>();
  const seen: Seen[] = [];
  const closedEarly: string[] = [];
  const provider = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.on('close', () => {
        if (!res.writableFinished) closedEarly.push(req.url ?? '');
      });
      if (req.url === '/ct/ctregister.asp') {
        res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8' });
        res.end(REGISTRATION);
      } else if (req.url === '/hang') {
        pending.add(res);
      } else if (req.url === '/slow-body') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.write(`<response xmlns="${NS}">`);
        pending.add(res);
      } else if (req.url?.startsWith('/echo')) {
        res.setHeader('Set-Cookie', ['a=1', 'b=2']);
        res.writeHead(201, 'Made It', { 'content-type': 'text/plain', 'x-provider': 'yes', connection: 'close' });
        res.end(Buffer.concat(chunks));
      } else if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first part;');
        pending.add(res);
      } else {
        res.writeHead(404, { 'content-type': 'text/html' });
        res.end('<html><body>Not Found</body></html>');
      }
    });
  });
  const agentConfig = parseAgentConfig({
    relay: 'ws://127.0.0.1:9', token: 'a.b.c', tunnels: { cioc: { target: provider.url }, quick: { target: provider.url }, web: { target: provider.url } },
  }, 'agent.yaml', {});
  const requestsAtAgent = new TunnelRequests(agentConfig, captureLog().log);
  const atAgent: Exchange[] = [];
  pair.agent.on('exchange', (ex) => {
    atAgent.push(ex);
    requestsAtAgent.serve(ex);
  });
  const agent: ConnectedAgent = { connectionId: 'c1', agentId: 'acme-1', remoteAddress: '127.0.0.1', tunnels: ['cioc', 'quick', 'web'], session: pair.relay, draining: false };
  registry.add(agent);

  let publicUrl = '';
  const kinds = createKindHandlers(config, { publicUrlFor: (t) => `${publicUrl}/t/${t}/`, log });
  const kindOf = (t: string): KindHandler => kinds.get(t) ?? httpKind;
  const requests = new PublicRequests({ admission: new Admission({ config }, registry, false), log, kindOf });
  const front = await listen(requests.handle);
  front.server.on('checkContinue', requests.handleExpectContinue);
  publicUrl = front.url;
  cleanups.push(async () => {
    for (const res of pending) res.destroy();
    await front.close();
    await requestsAtAgent.destroy();
    await pair.close();
    await provider.close();
  });
  return { front, lines, kinds, kindOf, requests, agent, atAgent, seen, closedEarly, pending };
}

describe('PublicRequests with the clienttracker kind', () => {
  it('has a kind handler only for clienttracker tunnels; the others are plain http', async () => {
    const { kinds, kindOf } = await relayWithAgent();
    expect([...kinds.keys()].sort()).toEqual(['cioc', 'down', 'quick']);
    expect(kindOf('web')).toBe(httpKind);
    expect(kindOf('nope')).toBe(httpKind);
  });

  it('rewrites a registration fetched through the tunnel to the public URL', async () => {
    const { front, atAgent } = await relayWithAgent();
    const res = await request(`${front.url}/t/cioc/ct/ctregister.asp`);
    expect(res.status).toBe(200);
    expect(res.headers['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(res.text).toContain(`<resourceInfoURL>${front.url}/t/cioc/ct/ctfetch.asp?num=[ID]</resourceInfoURL>`);
    expect(res.text).toContain('<launchURL>http://cioc.intranet/ct/ctlaunch.asp?');
    expect(validateXml('registration', res.body)).toEqual({ ok: true });
    // One exchange, whose head carried the same request id.
    expect(atAgent).toHaveLength(1);
    expect(atAgent[0].head.requestId).toBe(res.headers['x-ctbridge-request-id']);
  });

  it('answers "agent not connected" in XML with status 200', async () => {
    const { front } = await relayWithAgent();
    const res = await request(`${front.url}/t/down/ct/ctfetch.asp?num=1`);
    expect(res.status).toBe(200);
    expect(res.headers['x-ctbridge-error']).toBe('CTB_AGENT_NOT_CONNECTED');
    expect(res.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(errorTextOf(res.text)).toBe(
      "The on-premise ctbridge agent for 'down' is not connected to the relay; ask your IT team to check the agent service.",
    );
  });

  it('answers the request timeout in XML, before or after the provider started its answer, and cancels the exchange', async () => {
    const { front, lines, closedEarly } = await relayWithAgent();
    for (const path of ['/hang', '/slow-body']) {
      const res = await request(`${front.url}/t/quick${path}`);
      expect(res.status).toBe(200);
      expect(res.headers['x-ctbridge-error']).toBe('CTB_REQUEST_TIMEOUT');
      expect(errorTextOf(res.text)).toContain("The provider behind 'quick' did not answer within 0.5 seconds");
    }
    await until(() => lines.filter((l) => l.msg === 'request').length === 2);
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.code)).toEqual(['CTB_REQUEST_TIMEOUT', 'CTB_REQUEST_TIMEOUT']);
    // The agent was told, and dropped the provider's requests.
    await until(() => closedEarly.length === 2);
    expect(closedEarly.sort()).toEqual(['/hang', '/slow-body']);
  });

  it('report mode passes a provider 404 page through', async () => {
    const { front } = await relayWithAgent();
    const res = await request(`${front.url}/t/cioc/missing`);
    expect(res.status).toBe(404);
    expect(res.text).toBe('<html><body>Not Found</body></html>');
  });
});

describe('PublicRequests with the http kind', () => {
  it('carries the request body to the target and the answer back: status, reason, raw header pairs, body', async () => {
    const { front, seen } = await relayWithAgent();
    const res = await request(`${front.url}/t/web/echo?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-forwarded-for': '6.6.6.6', 'x-ctbridge-request-id': 'forged' },
      body: 'hello tunnel',
    });
    expect(res.status).toBe(201);
    expect(res.text).toBe('hello tunnel');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers['x-provider']).toBe('yes');
    expect(res.headers['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/echo?x=1' });
    expect(seen[0].headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen[0].headers['x-ctbridge-request-id']).toBe(res.headers['x-ctbridge-request-id']);
  });

  it('answers Expect: 100-continue itself once admitted, and refuses a declared body over the limit without an exchange', async () => {
    const { front, atAgent, seen } = await relayWithAgent();
    const statuses = async (headers: Record<string, string>, body: Buffer): Promise<{ interim: number[]; status: number; code: string | undefined }> => {
      const interim: number[] = [];
      return new Promise((resolve, reject) => {
        const req = http.request(`${front.url}/t/web/echo`, { method: 'POST', headers: { ...headers, expect: '100-continue', 'content-length': String(body.length) }, agent: false });
        req.on('information', (info) => interim.push(info.statusCode));
        req.on('continue', () => req.end(body));
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ interim, status: res.statusCode ?? 0, code: res.headers['x-ctbridge-error'] as string | undefined }));
        });
        req.on('error', reject);
        req.flushHeaders();
      });
    };
    expect(await statuses({}, Buffer.from('small'))).toEqual({ interim: [100], status: 201, code: undefined });
    expect(seen.map((s) => s.body.toString())).toEqual(['small']);
    const refused = await statuses({}, Buffer.alloc(2048));
    expect(refused).toEqual({ interim: [], status: 413, code: 'CTB_BODY_TOO_LARGE' });
    expect(atAgent).toHaveLength(1);
  });

  it('refuses a body that grows over the limit while it arrives, and resets its exchange', async () => {
    const { front, atAgent } = await relayWithAgent();
    const res = await request(`${front.url}/t/web/echo`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: Buffer.alloc(4096, 0x61) });
    expect(res.status).toBe(413);
    expect(res.headers['x-ctbridge-error']).toBe('CTB_BODY_TOO_LARGE');
    await until(() => atAgent.length === 1 && atAgent[0].closed);
  });

  it('cancels the exchange (CTB_CANCELLED) when the caller goes away mid-answer', async () => {
    const { front, lines, atAgent, closedEarly } = await relayWithAgent();
    const socket = net.connect(front.port, '127.0.0.1');
    socket.write('GET /t/web/stream HTTP/1.1\r\nHost: relay.example\r\n\r\n');
    const [first] = (await once(socket, 'data')) as [Buffer];
    expect(first.toString()).toContain('HTTP/1.1 200');
    const reset = once(atAgent[0], 'reset');
    socket.destroy();
    const [err] = (await reset) as [{ code: string }];
    expect(err.code).toBe('CTB_CANCELLED');
    await until(() => closedEarly.includes('/stream'));
    await until(() => lines.some((l) => l.msg === 'request' && l.code === 'CTB_CANCELLED'));
    expect(lines.find((l) => l.msg === 'request' && l.code === 'CTB_CANCELLED')).toMatchObject({ tunnel: 'web', status: 200, completed: false });
  });

  it('sends no new exchange to a draining agent: 503 with Retry-After', async () => {
    const { front, agent, atAgent } = await relayWithAgent();
    agent.draining = true;
    const res = await request(`${front.url}/t/web/echo`);
    expect(res.status).toBe(503);
    expect(res.headers['x-ctbridge-error']).toBe('CTB_SHUTTING_DOWN');
    expect(res.headers['retry-after']).toBe('1');
    expect(atAgent).toHaveLength(0);
  });
});

// Regression (review): with inspect.bodies the inspector tapped the request body of a refused request,
// which put it in flowing mode: the relay read the whole upload it had turned down.
describe('PublicRequests with inspect.bodies', () => {
  it('does not read the body of a request it refused (no agent): the inspector keeps the refusal without a request body', async () => {
    const config = relayConfig({ tunnels: { web: { kind: 'http' } } });
    const { log } = captureLog();
    const inspect = new RelayInspect({ enabled: true, entries: 10, maxBytes: 1 << 20, bodies: 1024 });
    const requests = new PublicRequests({ admission: new Admission({ config }, new AgentRegistry(config.limits.maxStreamsPerAgent), false), log, kindOf: () => httpKind, inspect });
    // Right after the relay answered, before Node discards what is left of the request at the response's end.
    const seen: { tapped: number; flowing: boolean | null }[] = [];
    const front = await listen((req, res) => {
      requests.handle(req, res);
      seen.push({ tapped: req.listenerCount('data'), flowing: req.readableFlowing });
    });
    cleanups.push(() => front.close());
    const socket = net.connect(front.port, '127.0.0.1');
    cleanups.push(async () => void socket.destroy());
    const recorded = new Promise<InspectEntry>((resolve) => inspect.ring.subscribe(resolve));
    socket.write('POST /t/web/upload HTTP/1.1\r\nHost: relay\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\nthe first bytes of an upload');
    let answer = '';
    socket.setEncoding('utf8');
    await new Promise<void>((resolve) => socket.on('data', (c: string) => (answer += c).includes('\r\n\r\n') && resolve()));
    expect(answer).toMatch(/^HTTP\/1\.1 50[23] /);
    expect(seen).toEqual([{ tapped: 0, flowing: null }]);
    const entry = await recorded;
    expect(entry).toMatchObject({ tunnel: 'web', method: 'POST', code: 'CTB_AGENT_NOT_CONNECTED' });
    expect(entry.requestBody).toBeUndefined();
  });
});
