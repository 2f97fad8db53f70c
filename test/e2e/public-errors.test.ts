/**
 * Issue 12, findings 7 and 10: what a public caller reads when the bridge
 * fails. Real relay and agent processes; the caller's answer holds the
 * code, one plain sentence and the request id, and may be read by a page
 * of any origin; the intranet details (target URL, agent id, config keys)
 * are only in the log lines with that request id.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { stopAll, writeYaml, type CtbridgeProcess, type LogLine } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, TEST_SECRET, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

/** The relay's own answer to a caller: the code, the sentence, the request id, readable from any origin, without credentials. */
function expectPublicError(r: Reply, code: string): string {
  expect(r.headers['x-ctbridge-error']).toBe(code);
  expect(r.headers['access-control-allow-origin']).toBe('*');
  expect(r.headers['access-control-allow-credentials']).toBeUndefined();
  expect(r.headers['access-control-expose-headers']).toContain('X-Ctbridge-Request-Id');
  const requestId = String(r.headers['x-ctbridge-request-id']);
  const body = JSON.parse(r.text) as { error: Record<string, unknown> };
  expect(body.error).toEqual({ details: expect.any(String), _type: 'CtbridgeError', code, message: expect.stringMatching(/^[A-Z][^\n]+\.$/), requestId });
  return requestId;
}

const AGENT_ID = 'acme-secret-site';

let backend: Backend;
let relay: RelayInfo;
let agent: CtbridgeProcess;
let deadPort: number;

beforeAll(async () => {
  backend = await startBackend();
  [deadPort] = await freePorts(1);
  relay = await startRelayProcess({ tunnels: { web: {}, dead: {}, offline: {} } });
  agent = await startAgentProcess({
    relayUrl: relay.url,
    token: await tokenFor(['web', 'dead'], AGENT_ID),
    tunnels: { web: { target: backend.url }, dead: { target: `http://127.0.0.1:${deadPort}` } },
  });
});

afterAll(async () => {
  await stopAll();
  await backend?.close();
});

const withId = (requestId: string, msg?: string) => (l: LogLine): boolean => l.requestId === requestId && (msg === undefined || l.msg === msg);

describe('public error answers say little; the log lines say everything', () => {
  it('unreachable target: the body names no target URL, agent id or config key; both logs do, under the request id', async () => {
    const r = await request(`${relay.url}/t/dead/orders`);
    expect(r.status).toBe(502);
    const requestId = expectPublicError(r, 'CTB_TARGET_UNREACHABLE');
    expect(JSON.parse(r.text).error.message).toBe('The on-premise agent could not reach the service behind this tunnel; if it keeps happening, give the request id to the operator.');
    for (const leak of [`${deadPort}`, '127.0.0.1', AGENT_ID, 'agent.yaml', 'tunnels.dead', 'connection refused']) expect(r.text).not.toContain(leak);

    const relayLine = await relay.proc.waitForLog(withId(requestId, 'request'));
    expect(relayLine).toMatchObject({ code: 'CTB_TARGET_UNREACHABLE', agentId: AGENT_ID });
    expect(String(relayLine.reason)).toContain(`http://127.0.0.1:${deadPort}`);
    expect(String(relayLine.reason)).toContain('connection refused');
    const agentLine = await agent.waitForLog(withId(requestId));
    expect(JSON.stringify(agentLine)).toContain(`127.0.0.1:${deadPort}`);
  });

  it('relay refusals (unknown tunnel, no agent, dot segment) carry ACAO *, the request id, and a sentence that names no config key', async () => {
    const unknown = await request(`${relay.url}/t/nosuch/x`);
    expect(unknown.status).toBe(404);
    const id = expectPublicError(unknown, 'CTB_TUNNEL_UNKNOWN');
    expect(unknown.text).not.toContain('relay.yaml');
    expect(await relay.proc.waitForLog(withId(id, 'request refused'))).toMatchObject({ code: 'CTB_TUNNEL_UNKNOWN', reason: expect.stringContaining("no tunnel named 'nosuch'") });

    const offline = await request(`${relay.url}/t/offline/x`);
    expect(offline.status).toBe(502);
    expectPublicError(offline, 'CTB_AGENT_NOT_CONNECTED');
    expect(JSON.parse(offline.text).error.details).toBe('agent not connected here: [offline]');

    const dots = await request(`http://127.0.0.1:${relay.port}`, { path: '/t/web/a/%2e%2e/b' });
    expect(dots.status).toBe(400);
    expectPublicError(dots, 'CTB_BAD_REQUEST');
    expect(JSON.parse(dots.text).error.message).toBe('The request is malformed: the path has a "." or ".." segment, which a tunnel does not allow.');
  });

  it('a refused WebSocket upgrade (raw answer) carries the same body, ACAO * and the request id', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const s = net.connect(relay.port, '127.0.0.1', () => {
        s.write('GET /t/offline/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      });
      let text = '';
      s.setEncoding('utf8').on('data', (c: string) => (text += c));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 502 /);
    expect(raw).toMatch(/\r\nAccess-Control-Allow-Origin: \*\r\n/i);
    const id = /\r\nx-ctbridge-request-id: (\w+)\r\n/i.exec(raw)?.[1];
    expect(id).toBeDefined();
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: { requestId: string; code: string } };
    expect(body.error).toMatchObject({ code: 'CTB_AGENT_NOT_CONNECTED', requestId: id });
    expect(await relay.proc.waitForLog(withId(id!, 'request refused'))).toMatchObject({ upgrade: true, code: 'CTB_AGENT_NOT_CONNECTED' });
  });

  it('revoked agent: a request in flight when the reload cuts the agent off names neither the agent nor auth.revoked', async () => {
    const pending = request(`${relay.url}/t/web/longpoll?ms=60000`);
    await backend.arrived('/longpoll');
    const before = relay.proc.countLogs('config reloaded');
    writeYaml(relay.dir, 'relay.yaml', {
      listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, log: { level: 'info' },
      auth: { secret: TEST_SECRET, revoked: { agents: [AGENT_ID] } }, tunnels: { web: {}, dead: {}, offline: {} },
    });
    relay.proc.child.kill('SIGHUP');
    await relay.proc.waitForLog((l) => l.msg === 'config reloaded' && relay.proc.countLogs('config reloaded') > before);
    const r = await pending;
    expect(r.status).toBe(502);
    const requestId = expectPublicError(r, 'CTB_AGENT_DISCONNECTED');
    for (const leak of [AGENT_ID, 'auth.revoked', 'revoked', 'relay.yaml', '4401']) expect(r.text).not.toContain(leak);
    const line = await relay.proc.waitForLog(withId(requestId, 'request'));
    // The agent hears what its operator can do (not relay.yaml's keys); the relay's cut-off line, under the same id, says which key.
    const closeId = /code 4401: The relay operator revoked this agent's token; ask them for a new one \(request id ([0-9a-f]{16})\)/.exec(String(line.reason))?.[1];
    expect(closeId, String(line.reason)).toBeDefined();
    const cut = await relay.proc.waitForLog((l) => l.msg === 'agent cut off: its token no longer holds' && l.requestId === closeId);
    expect(String(cut.detail)).toContain(`agent '${AGENT_ID}' is revoked in auth.revoked.agents`);
  });
});
