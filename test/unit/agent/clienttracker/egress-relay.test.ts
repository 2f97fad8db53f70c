/**
 * The agent's egress against the relay's real egress handler
 * (relay/clienttracker/egress.ts) and a fake Client Tracker: the two halves
 * agree on the wire, and messages reach Client Tracker byte for byte.
 */
import type http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../../../agent/index.js';
import type { ConnectedAgent } from '../../../../relay/agent-registry.js';
import { createEgressHandler } from '../../../../relay/clienttracker/index.js';
import { shortHash } from '../../../../src/redact.js';
import { captureLog, errorTextOf, listen, relayConfig } from '../../relay/clienttracker/helpers.js';
import { request } from '../../../helpers/http.js';
import { FakeRelay, LogCapture, freePort, testConfig } from '../helpers.js';

const NS = 'http://clienttracker.cioc.ca/schema/';
const KEY = 'Remote-Key-0f9e8d7c-never-logged';
const PUSH = `\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<pushResource xmlns="${NS}">\n  <login>mtremblay</login><key>${KEY}</key><ctid>42</ctid>\n  <resourceItem><id>ZZZ 00123/é</id><name>Banque alimentaire &amp; Co</name><url>https://intranet.example/record?id=ZZZ</url></resourceItem>\n</pushResource>\n`;
const CT_ANSWER = `<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="${NS}"><success/><ids><id>ZZZ 00123/é</id></ids></response>\n`;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** POST `body` (XML) to the egress listener; the answer's body as text. */
async function post(port: number, path: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const r = await request(`http://127.0.0.1:${port}`, { path, method: 'POST', headers: { 'content-type': 'text/xml' }, body });
  return { status: r.status, headers: r.headers, body: r.text };
}

async function setup(rpcUrl: string) {
  const relay = await FakeRelay.start();
  cleanups.push(() => relay.close());
  const relayLog = captureLog();
  const handler = createEgressHandler({ config: relayConfig({ tunnels: { t1: { kind: 'clienttracker', clientTracker: { rpcUrl } } } }) }, relayLog.log, { timeoutMs: 2000 });
  cleanups.push(async () => handler.close());
  const logs = new LogCapture();
  const config = await testConfig(relay.url, { t1: { target: 'http://127.0.0.1:9' } }, { egress: { listen: '127.0.0.1:0' } });
  const agent = await startAgent(config, logs.logger);
  cleanups.push(() => agent.close());
  const conn = await relay.accept(0);
  await agent.whenReady();
  const connected: ConnectedAgent = { connectionId: 'c0', agentId: 'test-agent', remoteAddress: '127.0.0.1', tunnels: ['t1'], session: conn.session, draining: false };
  conn.session.on('exchange', (exchange) => handler(exchange, connected));
  const port = Number(String(logs.find('egress listening')?.listen).split(':').pop());
  return { port, logs, relayLines: relayLog.lines };
}

describe('agent egress through the relay egress handler', () => {
  it('delivers each message to Client Tracker byte for byte, once, and returns its answer', async () => {
    const seen: { url: string; body: Buffer; contentType: string | undefined }[] = [];
    const ct = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body: Buffer.concat(chunks), contentType: req.headers['content-type'] });
        res.writeHead(200, { 'content-type': 'text/xml; charset=UTF-8' });
        res.end(CT_ANSWER);
      });
    });
    cleanups.push(ct.close);
    const { port, logs, relayLines } = await setup(`${ct.url}/ct/rpc/`);
    for (let i = 0; i < 3; i++) {
      const reply = await post(port, '/t/t1/add_resource', PUSH);
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('text/xml; charset=UTF-8');
      expect(reply.body).toBe(CT_ANSWER);
      expect(reply.headers['x-ctbridge-request-id']).toMatch(/^e[0-9a-f]{16}$/);
    }
    expect(seen).toHaveLength(3);
    for (const s of seen) {
      expect(s.url).toBe('/ct/rpc/add_resource');
      expect(s.contentType).toBe('application/xml; charset=utf-8');
      expect(s.body.equals(Buffer.from(PUSH))).toBe(true);
    }
    const line = logs.find('egress');
    expect(line).toMatchObject({ tunnel: 't1', message: 'add_resource', status: 200, login: shortHash('mtremblay'), ctid: '42' });
    // Both sides' lines share the relay's request id.
    expect(relayLines.find((l) => l.msg === 'client tracker message')?.requestId).toBe(line?.requestId);
    expect(logs.all).not.toContain(KEY);
    expect(logs.all).not.toContain('mtremblay');
  });

  it('words the relay\'s "Client Tracker unreachable" from the data it carries (origin and problem)', async () => {
    const port0 = await freePort();
    const { port, relayLines } = await setup(`http://127.0.0.1:${port0}/rpc/secret-path/`);
    const reply = await post(port, '/t/t1/is_in_request', `<isInRequest xmlns="${NS}"><login>a</login><key>${KEY}</key><ctid>1</ctid></isInRequest>`);
    expect(reply.status).toBe(502);
    expect(reply.headers['x-ctbridge-error']).toBe('CTB_CT_UNREACHABLE');
    expect(reply.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(errorTextOf(reply.body)).toBe(
      `The ctbridge relay could not reach Client Tracker at http://127.0.0.1:${port0} (connection refused), so the is_in_request message for 't1' may or may not have reached it. It was not sent again: check the Request in Client Tracker before trying again. If it keeps happening, ask the relay operator to check the tunnel's Client Tracker RPC URL.`,
    );
    expect(reply.body).not.toContain(KEY);
    expect(reply.body).not.toContain('secret-path');
    expect(relayLines.find((l) => l.msg === 'client tracker message failed')).toMatchObject({ code: 'CTB_CT_UNREACHABLE', reason: 'connection refused' });
  });
});
