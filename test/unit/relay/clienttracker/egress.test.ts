import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectedAgent } from '../../../../relay/agent-registry.js';
import { createEgressHandler, CT_METRICS } from '../../../../relay/clienttracker/index.js';
import type { MuxSession } from '../../../../src/mux/session.js';
import { shortHash } from '../../../../src/redact.js';
import { MAX_EGRESS_BODY } from '../../../../src/xml/egress-messages.js';
import { exchange, until, type Pending } from '../../../helpers/exchange.js';
import { sessionPair } from '../../../helpers/ws-pair.js';
import { captureLog, listen, relayConfig, type LogLine, type TestServer } from './helpers.js';

const NS = 'http://clienttracker.cioc.ca/schema/';
const PUSH = Buffer.from(
  `\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<pushResource xmlns="${NS}">\n  <login>jsmith</login><key>SECRETKEY-123</key><ctid>42</ctid>\n  <resourceItem><id>ZZZ00123</id><name>Food Bank &amp; Pantry</name><url>https://intranet.example/record/ZZZ00123</url></resourceItem>\n</pushResource>\n`,
);
const CT_ANSWER = `<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="${NS}"><success/><ids><id>ZZZ00123</id></ids></response>\n`;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function fakeCt(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void = defaultCt): Promise<TestServer & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      answer(req, res);
    });
  });
  cleanups.push(server.close);
  return { ...server, seen };
}

function defaultCt(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/xml; charset=UTF-8', 'x-ct-internal': 'not forwarded' });
  res.end(CT_ANSWER);
}

interface Setup {
  agent: MuxSession;
  lines: LogLine[];
  counts: { name: string; labels: Record<string, string> }[];
  close(): void;
  /** A message on a new egress exchange for `tunnel`, as the agent sends it. */
  send(target: string, options?: { tunnel?: string; method?: string; body?: Buffer | string | null; requestId?: string }): Pending;
}

let ids = 0;

async function setup(rpcUrl: string, opts: { agentTunnels?: string[]; timeoutMs?: number } = {}): Promise<Setup> {
  const config = relayConfig({
    tunnels: {
      cioc: { kind: 'clienttracker', clientTracker: { rpcUrl } },
      plain: { kind: 'http' },
      other: { kind: 'clienttracker', clientTracker: { rpcUrl } },
    },
  });
  const { lines, log } = captureLog();
  const counts: Setup['counts'] = [];
  const egress = createEgressHandler({ config }, log, {
    metrics: { increment: (name, labels) => counts.push({ name, labels }) },
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  });
  const pair = await sessionPair();
  cleanups.push(async () => {
    egress.close();
    await pair.close();
  });
  const connected: ConnectedAgent = {
    connectionId: 'conn-1',
    agentId: 'acme-1',
    remoteAddress: '127.0.0.1',
    tunnels: opts.agentTunnels ?? ['cioc', 'plain'],
    session: pair.relay,
    draining: false,
  };
  pair.relay.on('exchange', (ex) => egress(ex, connected));
  return {
    agent: pair.agent,
    lines,
    counts,
    close: () => egress.close(),
    send: (target, o = {}) => {
      const body = o.body === undefined ? PUSH : o.body === null ? undefined : Buffer.from(o.body);
      const headers = ['Content-Type', 'application/xml; charset=utf-8', 'Content-Length', String(body?.length ?? 0), 'X-Forwarded-For', '10.9.9.9'];
      return exchange(pair.agent, { kind: 'egress', tunnel: o.tunnel ?? 'cioc', method: o.method ?? 'POST', target, headers, requestId: o.requestId ?? `e${++ids}` }, body);
    },
  };
}

describe('egress: provider → Client Tracker', () => {
  it('POSTs the exact bytes to <rpcUrl><message> and returns status, content type and body unchanged', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/v1/`);
    const res = await s.send('/add_resource?debug=1&key=QUERYKEY', { requestId: 'e-msg-1' });
    expect(res.error).toBeUndefined();
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toBe('text/xml; charset=UTF-8');
    expect(res.header('x-ct-internal')).toBeUndefined();
    expect(res.header('x-ctbridge-request-id')).toBe('e-msg-1');
    expect(res.header('content-length')).toBe(String(Buffer.byteLength(CT_ANSWER)));
    expect(res.text).toBe(CT_ANSWER);
    expect(ct.seen).toHaveLength(1);
    const [got] = ct.seen;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/rpc/v1/add_resource');
    expect(got.body.equals(PUSH)).toBe(true);
    expect(got.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(got.headers['x-forwarded-for']).toBeUndefined();

    const line = s.lines.find((l) => l.msg === 'client tracker message');
    expect(line).toMatchObject({
      level: 30,
      requestId: 'e-msg-1',
      tunnel: 'cioc',
      message: 'add_resource',
      status: 200,
      bytesIn: PUSH.length,
      bytesOut: Buffer.byteLength(CT_ANSWER),
      login: shortHash('jsmith'),
      ctid: '42',
      agentId: 'acme-1',
    });
    expect(typeof line?.durationMs).toBe('number');
    const all = JSON.stringify(s.lines);
    expect(all).not.toContain('SECRETKEY');
    expect(all).not.toContain('QUERYKEY');
    expect(all).not.toContain('jsmith');
    expect(s.counts).toContainEqual({ name: CT_METRICS.egress, labels: { tunnel: 'cioc', message: 'add_resource', status: '200' } });
  });

  it('serves is_in_request and remove_resource too, and passes a CT error status through', async () => {
    const ct = await fakeCt((req, res) => {
      res.writeHead(req.url?.endsWith('is_in_request') ? 200 : 500, { 'content-type': 'application/xml' });
      res.end(`<response xmlns="${NS}"><no/></response>`);
    });
    const s = await setup(`${ct.url}/`);
    expect((await s.send('/is_in_request')).status).toBe(200);
    const removed = await s.send('/remove_resource');
    expect(removed.status).toBe(500);
    expect(removed.error).toBeUndefined();
    expect(removed.text).toBe(`<response xmlns="${NS}"><no/></response>`);
    expect(ct.seen.map((x) => x.url)).toEqual(['/is_in_request', '/remove_resource']);
  });

  it('carries an empty answer as a REPLY with END', async () => {
    const ct = await fakeCt((_req, res) => res.writeHead(204).end());
    const s = await setup(`${ct.url}/`);
    const res = await s.send('/add_resource');
    expect(res).toMatchObject({ status: 204, text: '', error: undefined });
    expect(res.header('content-type')).toBeUndefined();
  });

  it('takes a message whose OPEN carries END (no body) and sends it on', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const res = await s.send('/is_in_request', { body: null });
    expect(res.error).toBeUndefined();
    expect(res.status).toBe(200);
    expect(ct.seen).toHaveLength(1);
    expect(ct.seen[0].body.length).toBe(0);
  });

  it('refuses an unknown message path or another method, with the offending part as data, and sends nothing to CT', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const path = await s.send('/../admin/delete_all');
    expect(path.response).toBeUndefined();
    expect(path.error).toMatchObject({ code: 'CTB_PATH_NOT_ALLOWED', params: { problem: '/../admin/delete_all' } });
    expect(path.error?.status).toBe(404);
    expect(path.error?.message).toBe('the relay forwards only is_in_request, add_resource and remove_resource, not /../admin/delete_all');
    expect((await s.send('/add_resource/')).error).toMatchObject({ code: 'CTB_PATH_NOT_ALLOWED', params: { problem: '/add_resource/' } });
    const long = await s.send(`/${'x'.repeat(100)}`);
    expect(long.error?.params.problem).toBe(`/${'x'.repeat(56)}...`);
    const put = await s.send('/add_resource', { method: 'PUT' });
    expect(put.error).toMatchObject({ code: 'CTB_BAD_REQUEST', params: { problem: 'PUT' }, message: 'Client Tracker messages are sent with POST, not PUT' });
    expect(ct.seen).toEqual([]);
    expect(s.lines.filter((l) => l.msg === 'egress refused: not a Client Tracker message')).toHaveLength(4);
  });

  it('refuses a message over 1 MiB with CTB_BODY_TOO_LARGE, the limit as data', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const res = await s.send('/add_resource', { body: Buffer.alloc(MAX_EGRESS_BODY + 1, 0x20) });
    expect(res.error).toMatchObject({ code: 'CTB_BODY_TOO_LARGE', params: { bytes: MAX_EGRESS_BODY, body: 'request' } });
    expect(res.error?.status).toBe(413);
    expect(ct.seen).toEqual([]);
    // Exactly at the limit is fine.
    expect((await s.send('/add_resource', { body: Buffer.alloc(MAX_EGRESS_BODY, 0x20) })).status).toBe(200);
  });

  it("CT down: CTB_CT_UNREACHABLE with CT's origin (never its path) and the problem as data", async () => {
    const gone = await listen(() => undefined);
    await gone.close();
    const s = await setup(`http://127.0.0.1:${gone.port}/rpc/secret-path/`);
    const res = await s.send('/add_resource');
    expect(res.response).toBeUndefined();
    expect(res.error).toMatchObject({ code: 'CTB_CT_UNREACHABLE', params: { ctOrigin: `http://127.0.0.1:${gone.port}`, problem: 'connection refused' } });
    expect(res.error?.message).toBe(`the relay could not reach Client Tracker at http://127.0.0.1:${gone.port}: connection refused`);
    expect(JSON.stringify(res.error)).not.toContain('secret-path');
    expect(s.lines.find((l) => l.msg === 'client tracker message failed')).toMatchObject({ level: 40, code: 'CTB_CT_UNREACHABLE', reason: 'connection refused' });
    expect(JSON.stringify(s.lines)).not.toContain('secret-path');
  });

  it('CT silent: CTB_CT_UNREACHABLE after the timeout, and the message is sent exactly once', async () => {
    let held = 0;
    const ct = await fakeCt((_req, res) => {
      if (held++ === 0) return; // the first message is never answered
      defaultCt(_req, res);
    });
    const s = await setup(`${ct.url}/rpc/`, { timeoutMs: 300 });
    const res = await s.send('/add_resource');
    expect(res.error).toMatchObject({ code: 'CTB_CT_UNREACHABLE', params: { problem: 'no answer within 0.3 seconds' } });
    // The next message is the second thing CT hears of: no retry of the first came in between.
    expect((await s.send('/is_in_request')).status).toBe(200);
    expect(ct.seen.map((x) => x.url)).toEqual(['/rpc/add_resource', '/rpc/is_in_request']);
  });

  it('refuses an egress exchange for a tunnel without clientTracker.rpcUrl, or one the agent does not serve', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    for (const tunnel of ['plain', 'other', 'nope']) {
      const res = await s.send('/add_resource', { tunnel });
      expect(res.error?.code, tunnel).toBe('CTB_TUNNEL_NOT_ALLOWED');
      expect(res.error?.status).toBe(403);
    }
    expect(s.lines.filter((l) => l.msg === 'egress refused').map((l) => l.reason)).toEqual([
      "tunnel 'plain' has no clientTracker.rpcUrl in the relay config",
      "agent 'acme-1' does not serve tunnel 'other'",
      "agent 'acme-1' does not serve tunnel 'nope'",
    ]);
    expect(ct.seen).toEqual([]);
  });

  it('carries each message on its own exchange, several at once on one connection', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const a = s.send('/is_in_request', { requestId: 'e-a' });
    const b = s.send('/add_resource', { requestId: 'e-b' });
    expect(a.exchange.id).not.toBe(b.exchange.id);
    const [ra, rb] = await Promise.all([a, b]);
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect([ra.header('x-ctbridge-request-id'), rb.header('x-ctbridge-request-id')]).toEqual(['e-a', 'e-b']);
    expect(ct.seen.map((x) => x.url).sort()).toEqual(['/rpc/add_resource', '/rpc/is_in_request']);
    expect(s.agent.exchangeCount).toBe(0);
  });

  it('close() resets the messages still in flight with CTB_SHUTTING_DOWN', async () => {
    const ct = await fakeCt(() => undefined); // never answers
    const s = await setup(`${ct.url}/rpc/`);
    const pending = s.send('/add_resource');
    await until(() => ct.seen.length === 1);
    s.close();
    expect((await pending).error).toMatchObject({ code: 'CTB_SHUTTING_DOWN', message: 'the relay is shutting down' });
  });
});
