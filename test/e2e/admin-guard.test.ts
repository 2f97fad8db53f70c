/**
 * Issue 12, findings 3 and 4: the admin listeners of a real relay and a
 * real agent, asked the way a hostile web page would after a DNS rebind
 * (a foreign `Host`) or with a cross-site form post to /reload, through raw
 * HTTP requests (fetch cannot set Host).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { runToEnd, stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

/** One request to `base` (http://127.0.0.1:port) with exactly these headers (and Content-Length). */
async function ask(base: string, method: string, path: string, headers: Record<string, string>, body = '') {
  const r = await request(base, { method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body });
  return { status: r.status, headers: r.headers, body: r.text };
}

const REBIND = 'rebind.attacker.example:9090';

let backend: Backend;
let relay: RelayInfo;
let agent: CtbridgeProcess;
let agentAdmin: string;

beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({ tunnels: { web: {} }, admin: { listen: '127.0.0.1:0', hosts: ['status.corp.example'] } });
  agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { web: { target: `${backend.url}/intranet-only` } } });
  agentAdmin = await agent.adminUrl();
});

afterAll(async () => {
  await stopAll();
  await backend?.close();
});

describe('admin listener: Host must be its own name (DNS rebinding)', () => {
  it('relay and agent: a rebinding Host on /api/status gets 421 with a reason, a log line, and none of the status', async () => {
    for (const [proc, base] of [[relay.proc, relay.adminUrl], [agent, agentAdmin]] as const) {
      const r = await ask(base, 'GET', '/api/status', { host: REBIND });
      expect(r.status, base).toBe(421);
      expect(JSON.parse(r.body).error).toMatch(/Host header names a host this admin listener does not answer for.*admin\.hosts/);
      expect(r.body).not.toContain('intranet-only');
      expect(r.body).not.toContain(backend.url);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
      const line = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('admin request refused') && l.host === REBIND);
      expect(line.from).toBe('127.0.0.1');
      expect(line.path).toBe('/api/status');
      // Every path, the page and POST /reload included.
      expect((await ask(base, 'GET', '/', { host: REBIND })).status).toBe(421);
      expect((await ask(base, 'POST', '/reload', { host: REBIND, 'x-ctbridge-admin': '1' })).status).toBe(421);
    }
  });

  it('relay and agent: Host localhost:port and 127.0.0.1:port work', async () => {
    for (const base of [relay.adminUrl, agentAdmin]) {
      const port = new URL(base).port;
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, 'LOCALHOST']) {
        const r = await ask(base, 'GET', '/api/status', { host });
        expect(r.status, `${base} ${host}`).toBe(200);
        expect(JSON.parse(r.body).role).toMatch(/relay|agent/);
      }
    }
    // The agent's status holds the target: only its own names read it.
    expect((await ask(agentAdmin, 'GET', '/api/status', { host: 'localhost' })).body).toContain('intranet-only');
  });

  it('a name listed in admin.hosts works; the same name on a listener without it does not', async () => {
    expect((await ask(relay.adminUrl, 'GET', '/api/status', { host: 'status.corp.example:9090' })).status).toBe(200);
    expect((await ask(agentAdmin, 'GET', '/api/status', { host: 'status.corp.example:9091' })).status).toBe(421);
  });

  it('the page and every answer carry CSP, X-Frame-Options: DENY, nosniff, and no CORS header', async () => {
    for (const base of [relay.adminUrl, agentAdmin]) {
      for (const path of ['/', '/api/status', '/healthz', '/nowhere']) {
        const r = await ask(base, 'GET', path, { host: '127.0.0.1' });
        expect(r.headers['content-security-policy'], path).toMatch(/^default-src 'none'; style-src 'sha256-[^']+'( 'sha256-[^']+')*; .*frame-ancestors 'none'/);
        expect(r.headers['x-frame-options']).toBe('DENY');
        expect(r.headers['x-content-type-options']).toBe('nosniff');
        expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
      }
    }
  });
});

describe('admin listener: POST /reload refuses cross-site requests', () => {
  const FORMS: [string, string, string][] = [
    ['application/x-www-form-urlencoded', 'a=1', 'cross-site'],
    ['text/plain', 'x', 'cross-site'],
    ['text/plain', 'x', 'same-site'],
  ];

  it('relay and agent: a cross-site form post does not reload, while ctbridge reload still does and is logged with its address', async () => {
    for (const [proc, base, role] of [[relay.proc, relay.adminUrl, 'relay'], [agent, agentAdmin, 'agent']] as const) {
      const host = new URL(base).host;
      const before = proc.countLogs('config reloaded');
      for (const [type, body, site] of FORMS) {
        const r = await ask(base, 'POST', '/reload', { host, 'content-type': type, origin: 'http://evil.example', 'sec-fetch-site': site }, body);
        expect(r.status, `${role} ${type} ${site}`).toBe(403);
        expect(JSON.parse(r.body)).toEqual({ ok: false, message: expect.stringMatching(/^reload refused: a browser sent it from another site/) });
      }
      // A foreign Origin alone, or no header at all (a simple request), is refused too.
      expect((await ask(base, 'POST', '/reload', { host, 'content-type': 'text/plain', origin: 'http://evil.example', 'x-ctbridge-admin': '1' })).status).toBe(403);
      const simple = await ask(base, 'POST', '/reload', { host, 'content-type': 'application/x-www-form-urlencoded' }, 'a=1');
      expect(simple.status).toBe(403);
      expect(simple.body).toContain('X-Ctbridge-Admin: 1');
      const refused = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload refused: a browser sent it from another site'));
      expect(refused).toMatchObject({ from: '127.0.0.1', via: 'HTTP POST /reload', origin: 'http://evil.example' });

      const r = await runToEnd(['reload', '--admin', base]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^reloaded /);
      await proc.waitForLog('config reloaded');
      expect(proc.countLogs('config reloaded')).toBe(before + 1);
      expect(await proc.waitForLog('reloading config')).toMatchObject({ from: '127.0.0.1', via: 'HTTP POST /reload' });
    }
  });

  it('a SIGHUP reload says how it was asked', async () => {
    relay.proc.child.kill('SIGHUP');
    const line = await relay.proc.waitForLog((l) => l.msg === 'reloading config' && l.via === 'SIGHUP');
    expect(line.signal).toBe('SIGHUP');
    await relay.proc.waitForLog((l) => l.msg === 'config reloaded' && relay.proc.countLogs('config reloaded') >= 2);
  });
});
