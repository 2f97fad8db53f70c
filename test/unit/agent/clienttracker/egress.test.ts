import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EgressServer } from '../../../../agent/clienttracker/egress.js';
import { startAgent, type AgentHandle } from '../../../../agent/index.js';
import { CtbridgeError, isCtbridgeError } from '../../../../src/errors.js';
import { getHeader } from '../../../../src/http/headers.js';
import type { Exchange } from '../../../../src/mux/exchange.js';
import type { RequestHead } from '../../../../src/mux/heads.js';
import { MuxSession } from '../../../../src/mux/session.js';
import { shortHash } from '../../../../src/redact.js';
import { FakeRelay, LogCapture, TEST_SECRET, testConfig, type RelayConn } from '../helpers.js';
import { request } from '../../../helpers/http.js';

const execFileAsync = promisify(execFile);

const KEY = 'S3cr3t-Remote-Key-do-not-log';
const LOGIN = 'jsmith.private';
const NS = 'http://clienttracker.cioc.ca/schema/';

const IS_IN_REQUEST = `\uFEFF\r\n<?xml version="1.0" encoding="UTF-8"?>\r\n<isInRequest xmlns="${NS}">\r\n  <login>${LOGIN}</login><key>${KEY}</key><ctid>42</ctid>\r\n</isInRequest>\r\n`;
const ADD = `<?xml version="1.0" encoding="UTF-8"?>
<pushResource xmlns="${NS}">
  <login>${LOGIN}</login><key>${KEY}</key><ctid>42</ctid>
  <resourceItem><id>ZZZ00123</id><name>Food Bank — Nord</name><url>https://intranet.example/record/ZZZ00123</url></resourceItem>
</pushResource>`;
const REMOVE = `<?xml version="1.0" encoding="UTF-8"?>
<pushResourceRemove xmlns="${NS}">
  <login>${LOGIN}</login><key>${KEY}</key><ctid>42</ctid>
  <resourceItem><id>ZZZ00123</id></resourceItem>
</pushResourceRemove>`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Seen {
  head: RequestHead;
  /** A request header's first value (name in lower case). */
  header(name: string): string | undefined;
  body: Buffer;
}

interface Answer {
  status: number;
  headers: string[];
  body: string | Buffer;
}

/** What the fake relay does with a message it has read: answer it, reset the exchange with an error, or drop the connection. */
type Behaviour = (seen: Seen, ex: Exchange) => Answer | CtbridgeError | 'drop';

/** The relay's side of egress exchanges: each message read whole, then handled by `behaviour`. */
function serveEgress(conn: RelayConn, behaviour: Behaviour) {
  const seen: Seen[] = [];
  const exchanges: Exchange[] = [];
  const resets: CtbridgeError[] = [];
  conn.session.on('exchange', (ex) => {
    exchanges.push(ex);
    ex.on('reset', (err) => resets.push(err));
    const chunks: Buffer[] = [];
    ex.on('data', (c) => {
      chunks.push(c);
      ex.consumed(c.length);
    });
    const handle = (): void => {
      const s: Seen = { head: ex.head, header: (n) => getHeader(ex.head.headers, n), body: Buffer.concat(chunks) };
      seen.push(s);
      const answer = behaviour(s, ex);
      if (answer === 'drop') conn.ws.terminate();
      else if (answer instanceof CtbridgeError) ex.reset(answer);
      else {
        const body = Buffer.from(answer.body);
        ex.respond({ status: answer.status, headers: answer.headers }, body.length === 0);
        if (body.length > 0) {
          ex.send(body);
          ex.end();
        }
      }
    };
    if (ex.peerEnded) handle();
    else ex.once('end', handle);
  });
  return { seen, exchanges, resets };
}

const CT_ANSWER: Answer = {
  status: 200,
  headers: ['Content-Type', 'text/xml;charset=UTF-8', 'X-Ct-Internal', 'relay business'],
  body: `<?xml version="1.0"?>\n<response xmlns="${NS}"><yes><id>A</id><id>Ünïcödé</id></yes></response>\n`,
};

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request to the egress listener (POST unless `options.method`); `chunked` sends the body without Content-Length. */
async function post(port: number, path: string, body: string | Buffer, options: { method?: string; headers?: Record<string, string>; chunked?: boolean } = {}): Promise<Reply> {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: Record<string, string | number> = { 'content-type': 'application/xml', ...options.headers };
  if (!options.chunked && options.method !== 'GET') headers['content-length'] = buf.length;
  const method = options.method ?? 'POST';
  const r = await request(`http://127.0.0.1:${port}`, { path, method, headers, body: method === 'GET' ? undefined : buf, chunked: options.chunked });
  return { status: r.status, headers: r.headers, body: r.text };
}

function errorText(reply: Reply): string {
  const m = /<error>([\s\S]*)<\/error>/.exec(reply.body);
  expect(m, `expected an XML error body, got ${reply.body}`).not.toBeNull();
  return (m?.[1] ?? '').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function expectXmlError(reply: Reply, status: number, code: string): string {
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toBe('application/xml; charset=utf-8');
  expect(reply.headers['x-ctbridge-error']).toBe(code);
  expect(reply.body).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<response xmlns="http:\/\/clienttracker.cioc.ca\/schema\/">/);
  return errorText(reply);
}

async function setup(options: { egress?: Record<string, unknown>; accept?: boolean; behaviour?: Behaviour; timeoutMs?: number } = {}) {
  const relay = await FakeRelay.start();
  cleanups.push(() => relay.close());
  const logs = new LogCapture();
  const config = await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' }, t2: { target: 'http://127.0.0.1:9' } }, {
    egress: { listen: '127.0.0.1:0', ...options.egress },
  });
  const agent: AgentHandle = await startAgent(config, logs.logger);
  cleanups.push(() => agent.close());
  const listening = logs.find('egress listening');
  expect(listening).toBeDefined();
  const port = Number(String(listening?.listen).split(':').pop());
  let fake: ReturnType<typeof serveEgress> | undefined;
  if (options.accept !== false) {
    const conn = await relay.accept(0);
    await agent.whenReady();
    fake = serveEgress(conn, options.behaviour ?? (() => CT_ANSWER));
  }
  return { relay, logs, agent, port, seen: fake?.seen ?? [], exchanges: fake?.exchanges ?? [], resets: fake?.resets ?? [] };
}

describe('agent egress: forwarding', () => {
  it('logs the URL to give providers for each tunnel', async () => {
    const { logs, port } = await setup({ accept: false });
    const line = logs.find('egress listening');
    expect(line).toMatchObject({ level: 30, listen: `127.0.0.1:${port}`, allowFrom: ['127.0.0.0/8', '::1/128'], maxBody: 1024 * 1024 });
    expect(line?.urls).toEqual({ t1: `http://127.0.0.1:${port}/t/t1/`, t2: `http://127.0.0.1:${port}/t/t2/` });
  });

  it.each([
    ['is_in_request', IS_IN_REQUEST],
    ['add_resource', ADD],
    ['remove_resource', REMOVE],
  ])('sends %s byte for byte on its own egress exchange and returns the answer unchanged', async (name, body) => {
    const { port, seen, exchanges, resets } = await setup();
    const reply = await post(port, `/t/t1/${name}`, Buffer.from(body, 'utf8'), { headers: { 'x-provider': 'yes', cookie: 'ASP=1' } });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/xml;charset=UTF-8');
    expect(reply.body).toBe(CT_ANSWER.body);
    expect(reply.headers['x-ctbridge-error']).toBeUndefined();
    // Only the content type comes back from the relay's answer.
    expect(reply.headers['x-ct-internal']).toBeUndefined();
    expect(seen).toHaveLength(1);
    const s = seen[0] as Seen;
    expect(s.head).toMatchObject({ kind: 'egress', tunnel: 't1', method: 'POST', target: `/${name}` });
    expect(s.head.requestId).toMatch(/^e[0-9a-f]{16}$/);
    // The message id is the one the provider gets back (and both sides log).
    expect(reply.headers['x-ctbridge-request-id']).toBe(s.head.requestId);
    expect(s.header('content-type')).toBe('application/xml; charset=utf-8');
    expect(s.header('content-length')).toBe(String(Buffer.byteLength(body)));
    // The provider's own headers stay on the intranet.
    expect(s.header('x-provider')).toBeUndefined();
    expect(s.header('cookie')).toBeUndefined();
    expect(s.body.equals(Buffer.from(body, 'utf8'))).toBe(true);
    // One exchange per message, over once answered: ended both ways, not reset.
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0].closed).toBe(true);
    expect(resets).toEqual([]);
  });

  it('uses the tunnel named in the URL, and sends a chunked body on with a length', async () => {
    const { port, seen } = await setup();
    const reply = await post(port, '/t/t2/add_resource', ADD, { chunked: true });
    expect(reply.status).toBe(200);
    expect(seen[0]?.head).toMatchObject({ kind: 'egress', tunnel: 't2' });
    expect(seen[0]?.header('content-length')).toBe(String(Buffer.byteLength(ADD)));
    expect(seen[0]?.body.toString()).toBe(ADD);
  });

  it("passes Client Tracker's own error status and body through", async () => {
    const ctError = `<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="${NS}"><error>Invalid key</error></response>`;
    const { port } = await setup({ behaviour: () => ({ status: 500, headers: ['Content-Type', 'application/xml'], body: ctError }) });
    const reply = await post(port, '/t/t1/is_in_request', IS_IN_REQUEST);
    expect(reply.status).toBe(500);
    expect(reply.headers['x-ctbridge-error']).toBeUndefined();
    expect(reply.headers['content-type']).toBe('application/xml');
    expect(reply.body).toBe(ctError);
  });

  it("words the relay's error from its code and params, never its English message", async () => {
    const { port, logs } = await setup({
      behaviour: () => new CtbridgeError('CTB_CT_UNREACHABLE', 'relay-internal wording that must not be shown', {
        params: { ctOrigin: 'https://ct.example:8443', problem: 'connection refused' },
      }),
    });
    const reply = await post(port, '/t/t1/is_in_request', IS_IN_REQUEST);
    const text = expectXmlError(reply, 502, 'CTB_CT_UNREACHABLE');
    expect(text).toBe(
      "The ctbridge relay could not reach Client Tracker at https://ct.example:8443 (connection refused), so the is_in_request message for 't1' may or may not have reached it. It was not sent again: check the Request in Client Tracker before trying again. If it keeps happening, ask the relay operator to check the tunnel's Client Tracker RPC URL.",
    );
    expect(logs.find('egress')).toMatchObject({ level: 40, code: 'CTB_CT_UNREACHABLE', sent: 'unknown' });
  });

  it('tolerates a doubled slash between the base URL and the message name', async () => {
    const { port, seen } = await setup();
    const reply = await post(port, '/t/t1//is_in_request', IS_IN_REQUEST);
    expect(reply.status).toBe(200);
    expect(seen[0]?.head.target).toBe('/is_in_request');
  });
});

describe('agent egress: invalid messages are answered here and not forwarded', () => {
  it('an invalid push gets 400 naming the line, the element and what was expected', async () => {
    const { port, seen } = await setup();
    const bad = `<?xml version="1.0" encoding="UTF-8"?>
<pushResource xmlns="${NS}">
  <login>${LOGIN}</login><key>${KEY}</key><ctid>42</ctid>
  <resourceItem>
    <id>ZZZ00123</id>
    <url>https://intranet.example/record/ZZZ00123</url>
  </resourceItem>
</pushResource>`;
    const reply = await post(port, '/t/t1/add_resource', bad);
    const text = expectXmlError(reply, 400, 'CTB_XML_INVALID');
    expect(text).toContain("The add_resource message for 't1' was not sent to Client Tracker: it does not follow the Client Tracker schema.");
    expect(text).toMatch(/line 6, element <url>: .*Expected is \( .*name \)/);
    expect(text).not.toContain(KEY);
    expect(seen).toHaveLength(0);
  });

  it('a too-long key is reported without showing the key', async () => {
    const { port, seen } = await setup();
    const longKey = 'K'.repeat(10) + KEY;
    const bad = `<?xml version="1.0"?>\n<isInRequest xmlns="${NS}"><login>${LOGIN}</login><key>${longKey}</key><ctid>${'9'.repeat(60)}</ctid></isInRequest>`;
    const reply = await post(port, '/t/t1/is_in_request', bad);
    const text = expectXmlError(reply, 400, 'CTB_XML_INVALID');
    expect(text).toContain('element <ctid>');
    expect(text).not.toContain(KEY);
    expect(seen).toHaveLength(0);
  });

  it('remove_resource refuses a <pushResource> root (and add_resource a <pushResourceRemove>)', async () => {
    const { port, seen } = await setup();
    const wrong = await post(port, '/t/t1/remove_resource', ADD);
    const text = expectXmlError(wrong, 400, 'CTB_XML_INVALID');
    expect(text).toContain('line 2, element <pushResource>: remove_resource expects the root element <pushResourceRemove>, found <pushResource>');
    const wrong2 = await post(port, '/t/t1/add_resource', REMOVE);
    expect(expectXmlError(wrong2, 400, 'CTB_XML_INVALID')).toContain('add_resource expects the root element <pushResource>, found <pushResourceRemove>');
    const wrong3 = await post(port, '/t/t1/is_in_request', ADD);
    expect(expectXmlError(wrong3, 400, 'CTB_XML_INVALID')).toMatch(/Expected root element <isInRequest>.*found <pushResource>/);
    expect(seen).toHaveLength(0);
  });

  it('refuses a DOCTYPE', async () => {
    const { port, seen } = await setup();
    const evil = `<?xml version="1.0"?>\n<!DOCTYPE isInRequest [<!ENTITY x "${'a'.repeat(10)}">]>\n<isInRequest xmlns="${NS}"><login>&x;</login><key>k</key><ctid>1</ctid></isInRequest>`;
    const reply = await post(port, '/t/t1/is_in_request', evil);
    const text = expectXmlError(reply, 400, 'CTB_XML_INVALID');
    expect(text).toContain('line 2: <!DOCTYPE declarations are refused');
    expect(seen).toHaveLength(0);
  });

  it('reports XML that is not well-formed, and a wrong namespace', async () => {
    const { port, seen } = await setup();
    const broken = await post(port, '/t/t1/is_in_request', `<isInRequest xmlns="${NS}">\n<login>a</login><key>b</key><ctid>1</ctid>\n</isInReq>`);
    expect(expectXmlError(broken, 400, 'CTB_XML_INVALID')).toMatch(/line 3/);
    const ns = await post(port, '/t/t1/is_in_request', '<isInRequest><login>a</login><key>b</key><ctid>1</ctid></isInRequest>');
    expect(expectXmlError(ns, 400, 'CTB_XML_INVALID')).toContain('no namespace');
    const empty = await post(port, '/t/t1/is_in_request', '');
    expect(expectXmlError(empty, 400, 'CTB_XML_INVALID')).toContain('empty');
    expect(seen).toHaveLength(0);
  });
});

describe('agent egress: refusals', () => {
  it('unknown tunnel → 404 naming the configured tunnels', async () => {
    const { port, seen } = await setup();
    const reply = await post(port, '/t/nope/is_in_request', IS_IN_REQUEST);
    const text = expectXmlError(reply, 404, 'CTB_TUNNEL_UNKNOWN');
    expect(text).toContain("no tunnel named 'nope'");
    expect(text).toContain("'t1', 't2'");
    expect(text).toContain('agent.yaml');
    expect(seen).toHaveLength(0);
  });

  it('other paths and message names → 404; other methods → 400 with Allow', async () => {
    const { port, seen } = await setup();
    const path = await post(port, '/is_in_request', IS_IN_REQUEST);
    expect(expectXmlError(path, 404, 'CTB_PATH_NOT_ALLOWED')).toContain(`http://127.0.0.1:${port}/t/t1/`);
    const name = await post(port, '/t/t1/fetch_everything', IS_IN_REQUEST);
    expect(expectXmlError(name, 404, 'CTB_PATH_NOT_ALLOWED')).toContain("not 'fetch_everything'");
    const get = await post(port, '/t/t1/is_in_request', '', { method: 'GET' });
    expect(expectXmlError(get, 400, 'CTB_BAD_REQUEST')).toContain('must be sent with POST, not GET');
    expect(get.headers.allow).toBe('POST');
    const base = await post(port, '/t/t1/', '', { method: 'GET' });
    expect(expectXmlError(base, 404, 'CTB_PATH_NOT_ALLOWED')).toContain("This is the Client Tracker RPC URL for 't1'");
    expect(seen).toHaveLength(0);
  });

  it('a source outside egress.allowFrom → 403 naming the address and the config key', async () => {
    const { port, seen, logs } = await setup({ egress: { allowFrom: ['10.0.0.0/8'] } });
    const reply = await post(port, '/t/t1/add_resource', ADD);
    const text = expectXmlError(reply, 403, 'CTB_SOURCE_NOT_ALLOWED');
    expect(text).toContain('from 127.0.0.1');
    expect(text).toContain('egress.allowFrom in agent.yaml');
    expect(text).toContain('was not sent');
    expect(seen).toHaveLength(0);
    expect(logs.find('egress', (l) => l.code === 'CTB_SOURCE_NOT_ALLOWED')).toMatchObject({ level: 40, status: 403, remoteAddress: '127.0.0.1' });
  });

  it('a body over egress.maxBody → 413, declared or chunked', async () => {
    const { port, seen } = await setup({ egress: { maxBody: '1KiB' } });
    const big = ADD.replace('Food Bank', 'x'.repeat(2000));
    const declared = await post(port, '/t/t1/add_resource', big);
    const text = expectXmlError(declared, 413, 'CTB_BODY_TOO_LARGE');
    expect(text).toContain('larger than egress.maxBody in agent.yaml (1024 bytes)');
    expect(text).toContain('it was not sent');
    const chunked = await post(port, '/t/t1/add_resource', big, { chunked: true });
    expectXmlError(chunked, 413, 'CTB_BODY_TOO_LARGE');
    // A message within the limit still goes through.
    expect((await post(port, '/t/t1/add_resource', ADD)).status).toBe(200);
    expect(seen).toHaveLength(1);
  });

  it('a compressed body → 400', async () => {
    const { port, seen } = await setup();
    const reply = await post(port, '/t/t1/add_resource', ADD, { headers: { 'content-encoding': 'gzip' } });
    expect(expectXmlError(reply, 400, 'CTB_BAD_REQUEST')).toContain("Content-Encoding 'gzip'");
    expect(seen).toHaveLength(0);
  });
});

describe('agent egress: relay trouble', () => {
  it('relay not connected → 502 saying the message was not sent', async () => {
    const { port, logs } = await setup({ accept: false });
    const reply = await post(port, '/t/t1/add_resource', ADD);
    const text = expectXmlError(reply, 502, 'CTB_RELAY_UNREACHABLE');
    expect(text).toContain('not connected to the relay');
    expect(text).toContain("the add_resource message for 't1' was not sent to Client Tracker");
    expect(logs.find('egress')).toMatchObject({ status: 502, code: 'CTB_RELAY_UNREACHABLE', tunnel: 't1', message: 'add_resource' });
  });

  it('relay gone after being connected → 502 not sent', async () => {
    const { port, agent, relay } = await setup();
    const conn = await relay.connection(0);
    const gone = once(agent as never, 'disconnect');
    conn.ws.terminate();
    await gone;
    const reply = await post(port, '/t/t1/is_in_request', IS_IN_REQUEST);
    expect(expectXmlError(reply, 502, 'CTB_RELAY_UNREACHABLE')).toContain('was not sent');
  });

  it('connection lost after the message was handed over → 502 "may or may not", and no second attempt', async () => {
    const { relay, agent, port, seen } = await setup({ behaviour: () => 'drop' });
    const reply = await post(port, '/t/t1/add_resource', ADD);
    const text = expectXmlError(reply, 502, 'CTB_RELAY_UNREACHABLE');
    expect(text).toContain('between the on-premise ctbridge agent and the relay failed');
    expect(text).toContain('may or may not have reached Client Tracker');
    expect(text).toContain('not sent again');
    // The agent reconnects; the next message is the only one the new connection carries.
    const again = await relay.accept(1);
    await agent.whenReady();
    const next = serveEgress(again, () => CT_ANSWER);
    expect((await post(port, '/t/t1/remove_resource', REMOVE)).status).toBe(200);
    expect(seen.map((s) => s.head.target)).toEqual(['/add_resource']);
    expect(next.seen.map((s) => s.head.target)).toEqual(['/remove_resource']);
  });

  it('a reset from the relay after the message was handed over → "may or may not", worded by code', async () => {
    const { port, seen } = await setup({ behaviour: () => new CtbridgeError('CTB_UPSTREAM_INVALID', "Client Tracker's answer is not XML") });
    const reply = await post(port, '/t/t1/add_resource', ADD);
    const text = expectXmlError(reply, 502, 'CTB_UPSTREAM_INVALID');
    expect(text).toContain("The relay's answer to the add_resource message for 't1' could not be read");
    expect(text).toContain('may or may not have reached Client Tracker');
    expect(seen).toHaveLength(1);
  });

  it('the relay refusing the exchange at once → "was not sent", with its reason', async () => {
    const { relay, agent, port, logs } = await setup({ accept: false });
    const conn = await relay.accept(0);
    await agent.whenReady();
    conn.session.on('exchange', (ex) => {
      ex.reset(new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', "Client Tracker messages are not allowed here: tunnel 't1' has no clientTracker.rpcUrl in the relay config"));
    });
    const reply = await post(port, '/t/t1/is_in_request', IS_IN_REQUEST);
    const text = expectXmlError(reply, 403, 'CTB_TUNNEL_NOT_ALLOWED');
    expect(text).toContain("The ctbridge relay refused the is_in_request message for 't1'");
    expect(text).toContain('no clientTracker.rpcUrl');
    expect(text).toContain('it was not sent to Client Tracker');
    expect(logs.find('egress')).toMatchObject({ sent: 'no', code: 'CTB_TUNNEL_NOT_ALLOWED' });
  });

  it('no answer from the relay in time → 504 "may or may not", and the exchange is reset at the relay', async () => {
    const relay = await FakeRelay.start();
    cleanups.push(() => relay.close());
    const logs = new LogCapture();
    const config = await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' } }, { egress: { listen: '127.0.0.1:0' } });
    // A bare agent-role session to the fake relay, and the egress server on it with a short deadline.
    const ws = new WebSocket(relay.url);
    await once(ws, 'open');
    const session = new MuxSession(ws, { role: 'agent', window: 256 * 1024, maxIncoming: 10, heartbeat: { interval: 0, timeout: 0 } });
    const egress = await EgressServer.start(config, logs.logger, () => session, { timeoutMs: 200 });
    cleanups.push(async () => {
      await egress.close();
      ws.terminate();
    });
    const conn = await relay.connection(0);
    const opened: Exchange[] = [];
    const resets: CtbridgeError[] = [];
    conn.session.on('exchange', (ex) => {
      opened.push(ex); // accepted, never answered
      ex.on('reset', (err) => resets.push(err));
    });
    const reply = await post(egress.address.port, '/t/t1/is_in_request', IS_IN_REQUEST);
    const text = expectXmlError(reply, 504, 'CTB_REQUEST_TIMEOUT');
    expect(text).toContain('did not answer');
    expect(text).toContain('within 0.2 seconds');
    expect(text).toContain('may or may not have reached Client Tracker');
    expect(opened).toHaveLength(1);
    if (resets.length === 0) await once(opened[0], 'reset');
    expect(resets).toMatchObject([{ code: 'CTB_REQUEST_TIMEOUT', params: { seconds: 0.2 } }]);
  });
});

describe('agent egress: logs', () => {
  it('one line per message with tunnel, message, status, bytes, duration, hashed login and ctid; never the key', async () => {
    const { port, logs, seen } = await setup();
    await post(port, '/t/t1/is_in_request', IS_IN_REQUEST);
    await post(port, '/t/t1/add_resource', ADD);
    await post(port, '/t/t1/remove_resource', REMOVE);
    await post(port, '/t/t1/remove_resource', ADD); // invalid
    await post(port, '/t/t1/add_resource', ADD.replace('<name>Food Bank — Nord</name>', '')); // invalid
    const lines = logs.lines.filter((l) => l.msg === 'egress');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({
      level: 30, tunnel: 't1', message: 'is_in_request', status: 200, login: shortHash(LOGIN), ctid: '42',
      bytesIn: Buffer.byteLength(IS_IN_REQUEST), bytesOut: Buffer.byteLength(CT_ANSWER.body as string), requestId: seen[0]?.head.requestId,
    });
    expect(typeof lines[0]?.durationMs).toBe('number');
    expect(lines[1]).toMatchObject({ message: 'add_resource', status: 200, login: shortHash(LOGIN) });
    expect(lines[2]).toMatchObject({ message: 'remove_resource', status: 200 });
    expect(lines[3]).toMatchObject({ level: 40, message: 'remove_resource', status: 400, code: 'CTB_XML_INVALID', where: ['line 2 <pushResource>'] });
    expect(lines[4]).toMatchObject({ status: 400, code: 'CTB_XML_INVALID' });
    expect(logs.all).not.toContain(KEY);
    expect(logs.all).not.toContain(LOGIN);
  });
});

describe('agent egress: lifecycle', () => {
  it('close() stops the egress listener', async () => {
    const { port, agent } = await setup();
    expect((await post(port, '/t/t1/is_in_request', IS_IN_REQUEST)).status).toBe(200);
    await agent.close();
    await expect(post(port, '/t/t1/is_in_request', IS_IN_REQUEST)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('an egress.listen address in use fails startAgent with a config error', async () => {
    const relay = await FakeRelay.start();
    cleanups.push(() => relay.close());
    const blocker = http.createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const { port } = blocker.address() as AddressInfo;
    const config = await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' } }, { egress: { listen: `127.0.0.1:${port}` } });
    const err: unknown = await startAgent(config, new LogCapture().logger).then(() => undefined, (e: unknown) => e);
    expect(isCtbridgeError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'CTB_CONFIG_INVALID' });
    expect((err as Error).message).toContain(`egress.listen: cannot listen on 127.0.0.1:${port}: the address is already in use`);
    // Nothing was started: no relay connection. Instead of a fixed wait, an agent started now dials the same
    // relay the same way; a dial the failed agent had begun would have arrived first. The first is the new one.
    const witness = await startAgent(await testConfig(relay.url, { witness: { target: 'http://127.0.0.1:9' } }), new LogCapture().logger);
    cleanups.push(() => witness.close());
    expect((await (await relay.connection(0)).hello).tunnels).toEqual(['witness']);
    expect(relay.conns).toHaveLength(1);
  });

  it.each([
    ['without egress does not load', false],
    ['with egress loads', true],
  ])('an agent %s the schema validator (libxml2-wasm, ~180 MB RSS)', async (_label, withEgress) => {
    // A fresh process: count libxml2's WebAssembly instantiations while an agent starts.
    const script = `
      import { register } from 'tsx/esm/api';
      register();
      const W = globalThis.WebAssembly;
      let wasm = 0;
      const count = () => { if (/libxml2/.test(new Error().stack)) wasm++; };
      const instantiate = W.instantiate;
      W.instantiate = (...args) => { count(); return instantiate.apply(W, args); };
      W.Module = new Proxy(W.Module, { construct(target, args) { count(); return Reflect.construct(target, args); } });
      const { startAgent } = await import('./agent/index.ts');
      const { parseAgentConfig } = await import('./src/config/index.ts');
      const { createLogger } = await import('./src/log.ts');
      const { signAgentToken } = await import('./src/token.ts');
      const token = await signAgentToken({ agentId: 'a', tunnels: ['t1'], ttlMs: 3600000, key: { secret: '${TEST_SECRET}' } });
      const config = parseAgentConfig({
        relay: 'ws://127.0.0.1:9/_ctbridge/agent', token, proxy: 'none',
        tunnels: { t1: { target: 'http://127.0.0.1:9' } },
        ${withEgress ? "egress: { listen: '127.0.0.1:0' }," : ''}
        timeouts: { shutdownGrace: '0s' },
        admin: { listen: 'off' },
      }, 'agent.yaml', {});
      const agent = await startAgent(config, createLogger({ level: 'silent', name: 'agent' }));
      await agent.close();
      process.stdout.write(JSON.stringify({ wasm }));
      process.exit(0);
    `;
    // A bound against a hang only: compiling the TypeScript and the WebAssembly takes ~15 s on a loaded 2-core machine.
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), timeout: 100_000 });
    const { wasm } = JSON.parse(stdout) as { wasm: number };
    if (withEgress) expect(wasm).toBeGreaterThan(0);
    else expect(wasm).toBe(0);
  }, 120_000);
});
