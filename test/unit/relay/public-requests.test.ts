/**
 * The clienttracker kind behind the real request handler and a real tunnel
 * session: http-proxy-3's selfHandleResponse path, the handler's own
 * timeouts and refusals answered in XML.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentRegistry } from '../../../../relay/agent-registry.js';
import { createKindHandlerLookup } from '../../../../relay/clienttracker/index.js';
import { RequestHandler } from '../../../../relay/request-handler.js';
import { validateXml } from '../../../../src/xml/validate.js';
import { sessionPair } from '../../../helpers/ws-pair.js';
import { captureLog, errorTextOf, listen, relayConfig, request } from './helpers.js';

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

async function relayWithAgent() {
  const config = relayConfig({
    tunnels: {
      cioc: { kind: 'clienttracker', timeouts: { request: '500ms' }, clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } },
      down: { kind: 'clienttracker', clientTracker: { rpcUrl: 'http://127.0.0.1:9/' } },
    },
  });
  const { lines, log } = captureLog();
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  const pair = await sessionPair();
  // The agent side: tunnel streams go straight into the "provider".
  const pending = new Set<http.ServerResponse>();
  const provider = http.createServer((req, res) => {
    if (req.url === '/ct/ctregister.asp') {
      res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8' });
      res.end(REGISTRATION);
    } else if (req.url === '/hang') {
      pending.add(res);
    } else if (req.url === '/slow-body') {
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.write(`<response xmlns="${NS}">`);
      pending.add(res);
    } else {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body>Not Found</body></html>');
    }
  });
  pair.agent.on('stream', (s) => provider.emit('connection', s));
  registry.add({ connectionId: 'c1', agentId: 'acme-1', remoteAddress: '127.0.0.1', tunnels: ['cioc'], session: pair.relay, draining: false, idleStreams: 0 });

  let publicUrl = '';
  const kindHandler = createKindHandlerLookup(config, { publicUrlFor: (t) => `${publicUrl}/t/${t}/`, log });
  const handler = new RequestHandler({ config, registry, log, encrypted: false, kindHandler });
  const front = await listen(handler.handleRequest);
  publicUrl = front.url;
  cleanups.push(async () => {
    for (const res of pending) res.destroy();
    handler.destroyAgents();
    await front.close();
    await pair.close();
  });
  return { front, lines, kindHandler };
}

describe('clienttracker kind behind the request handler', () => {
  it('looks up a handler only for clienttracker tunnels', async () => {
    const { kindHandler } = await relayWithAgent();
    expect(kindHandler('cioc')?.selfHandleResponse).toBe(true);
    expect(kindHandler('nope')).toBeUndefined();
  });

  it('rewrites a registration fetched through the tunnel to the public URL', async () => {
    const { front } = await relayWithAgent();
    const res = await request(`${front.url}/t/cioc/ct/ctregister.asp`);
    expect(res.status).toBe(200);
    expect(res.headers['x-ctbridge-request-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(res.text).toContain(`<resourceInfoURL>${front.url}/t/cioc/ct/ctfetch.asp?num=[ID]</resourceInfoURL>`);
    expect(res.text).toContain('<launchURL>http://cioc.intranet/ct/ctlaunch.asp?');
    expect(validateXml('registration', res.body)).toEqual({ ok: true });
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

  it('answers the request timeout in XML, before or after the provider started its answer', async () => {
    const { front, lines } = await relayWithAgent();
    for (const path of ['/hang', '/slow-body']) {
      const res = await request(`${front.url}/t/cioc${path}`);
      expect(res.status).toBe(200);
      expect(res.headers['x-ctbridge-error']).toBe('CTB_REQUEST_TIMEOUT');
      expect(errorTextOf(res.text)).toContain("The provider behind 'cioc' did not answer within 0.5 seconds");
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.code)).toEqual(['CTB_REQUEST_TIMEOUT', 'CTB_REQUEST_TIMEOUT']);
  });

  it('report mode passes a provider 404 page through', async () => {
    const { front } = await relayWithAgent();
    const res = await request(`${front.url}/t/cioc/missing`);
    expect(res.status).toBe(404);
    expect(res.text).toBe('<html><body>Not Found</body></html>');
  });
});
