import { once } from 'node:events';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { CtbridgeError } from '../../../../src/errors.js';
import type { MuxSession } from '../../../../src/mux/session.js';
import type { TunnelStream } from '../../../../src/mux/stream.js';
import { shortHash } from '../../../../src/redact.js';
import { validateXml } from '../../../../src/xml/validate.js';
import type { ConnectedAgent } from '../../../../relay/agent-registry.js';
import { createEgressHandler, CT_METRICS, MAX_EGRESS_BODY } from '../../../../relay/clienttracker/index.js';
import { sessionPair } from '../../../helpers/ws-pair.js';
import { captureLog, errorTextOf, listen, relayConfig, request, type LogLine, type TestServer } from './helpers.js';

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
  /** POST (or other) through an egress stream for `tunnel`. */
  send(path: string, options?: { tunnel?: string; method?: string; body?: Buffer | string }): ReturnType<typeof request>;
  open(meta: Record<string, unknown>): TunnelStream;
}

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
  const egress = createEgressHandler(config, log, {
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
    draining: false, idleStreams: 0,
  };
  pair.relay.on('stream', (s) => egress(s, connected));
  const open = (meta: Record<string, unknown>): TunnelStream => pair.agent.openStream(meta);
  return {
    agent: pair.agent,
    lines,
    counts,
    open,
    send: (path, o = {}) => {
      const stream = open({ kind: 'egress', tunnel: o.tunnel ?? 'cioc' });
      const body = o.body ?? PUSH;
      return request(`http://relay${path}`, {
        method: o.method ?? 'POST',
        headers: { 'content-type': 'application/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'x-forwarded-for': '10.9.9.9' },
        body,
        createConnection: () => stream,
      });
    },
  };
}

function expectXmlError(answer: Awaited<ReturnType<typeof request>>, code: string, status: number): string {
  expect(answer.status).toBe(status);
  expect(answer.headers['x-ctbridge-error']).toBe(code);
  expect(answer.headers['content-type']).toBe('application/xml; charset=utf-8');
  expect(answer.headers['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
  expect(validateXml('pushResourceResponse', answer.body)).toEqual({ ok: true });
  return errorTextOf(answer.text) ?? '';
}

describe('egress: provider → Client Tracker', () => {
  it('POSTs the exact bytes to <rpcUrl><message> and returns status, content type and body unchanged', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/v1/`);
    const res = await s.send('/add_resource?debug=1&key=QUERYKEY');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/xml; charset=UTF-8');
    expect(res.headers['x-ct-internal']).toBeUndefined();
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
    expect(removed.headers['x-ctbridge-error']).toBeUndefined();
    expect(ct.seen.map((x) => x.url)).toEqual(['/is_in_request', '/remove_resource']);
  });

  it('answers an unknown message path with a 404 XML error and sends nothing to CT', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const text = expectXmlError(await s.send('/../admin/delete_all'), 'CTB_PATH_NOT_ALLOWED', 404);
    expect(text).toContain("The relay forwards only is_in_request, add_resource and remove_resource to Client Tracker for 'cioc'");
    expectXmlError(await s.send('/add_resource/'), 'CTB_PATH_NOT_ALLOWED', 404);
    expectXmlError(await s.send('/add_resource', { method: 'PUT' }), 'CTB_BAD_REQUEST', 400);
    expect(ct.seen).toEqual([]);
  });

  it('refuses a message over 1 MiB with 413', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const text = expectXmlError(await s.send('/add_resource', { body: Buffer.alloc(MAX_EGRESS_BODY + 1, 0x20) }), 'CTB_BODY_TOO_LARGE', 413);
    expect(text).toContain(`(${MAX_EGRESS_BODY} bytes)`);
    expect(ct.seen).toEqual([]);
  });

  it('CT down: 502 XML error naming CT by origin only', async () => {
    const gone = await listen(() => undefined);
    await gone.close();
    const s = await setup(`http://127.0.0.1:${gone.port}/rpc/secret-path/`);
    const text = expectXmlError(await s.send('/add_resource'), 'CTB_CT_UNREACHABLE', 502);
    expect(text).toBe(
      `The ctbridge relay could not reach Client Tracker at http://127.0.0.1:${gone.port} (connection refused); try again later, and if it keeps happening ask the relay operator to check the Client Tracker RPC URL for 'cioc'.`,
    );
    expect(text).not.toContain('secret-path');
    expect(s.lines.find((l) => l.msg === 'client tracker message failed')).toMatchObject({ level: 40, code: 'CTB_CT_UNREACHABLE', reason: 'connection refused' });
  });

  it('CT silent: 502 after the timeout, and the message is sent exactly once', async () => {
    const ct = await fakeCt(() => undefined); // never answers
    const s = await setup(`${ct.url}/rpc/`, { timeoutMs: 300 });
    const text = expectXmlError(await s.send('/add_resource'), 'CTB_CT_UNREACHABLE', 502);
    expect(text).toContain('(no answer within 0.3 seconds)');
    await new Promise((r) => setTimeout(r, 200));
    expect(ct.seen).toHaveLength(1);
  });

  it("refuses an egress stream for a tunnel without clientTracker.rpcUrl, or one the agent does not serve", async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    for (const tunnel of ['plain', 'other', 'nope']) {
      const stream = s.open({ kind: 'egress', tunnel });
      const [err] = (await once(stream, 'error')) as [CtbridgeError];
      expect(err.code).toBe('CTB_TUNNEL_NOT_ALLOWED');
    }
    const wrongKind = s.open({ kind: 'http', tunnel: 'cioc' });
    const [err] = (await once(wrongKind, 'error')) as [CtbridgeError];
    expect(err.code).toBe('CTB_PROTOCOL');
    expect(s.lines.filter((l) => l.msg === 'egress stream refused').map((l) => l.reason)).toEqual([
      "tunnel 'plain' has no clientTracker.rpcUrl in the relay config",
      "agent 'acme-1' does not serve tunnel 'other'",
      "agent 'acme-1' does not serve tunnel 'nope'",
    ]);
    expect(ct.seen).toEqual([]);
  });

  it('caps and cleans what the agent sent before logging it', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const hostile = `x\u001b[2J${'t'.repeat(10_000)}`;
    const stream = s.open({ kind: 'egress', tunnel: hostile });
    await once(stream, 'error');
    const wrongKind = s.open({ kind: hostile, tunnel: 'cioc' });
    const [err] = (await once(wrongKind, 'error')) as [CtbridgeError];
    expect(err.message.length).toBeLessThan(200);
    const logged = s.lines.filter((l) => l.msg === 'egress stream refused' || l.msg === 'agent stream refused: unknown kind');
    expect(logged).toHaveLength(2);
    for (const line of logged) {
      const text = JSON.stringify(line);
      expect(text).not.toContain('\\u001b');
      expect(text.length).toBeLessThan(1000);
    }
    expect(logged[0]!.tunnel).toBe(`x\ufffd[2J${'t'.repeat(58)}…[+9942 chars]`);
  });

  it('carries several messages over one kept-alive egress stream', async () => {
    const ct = await fakeCt();
    const s = await setup(`${ct.url}/rpc/`);
    const stream = s.open({ kind: 'egress', tunnel: 'cioc' });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agent.createConnection = () => stream;
    for (const path of ['/is_in_request', '/add_resource']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: 'relay', path, method: 'POST', agent, headers: { 'content-length': PUSH.length } }, (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(PUSH);
      });
      expect(status).toBe(200);
    }
    agent.destroy();
    expect(ct.seen.map((x) => x.url)).toEqual(['/rpc/is_in_request', '/rpc/add_resource']);
  });
});

