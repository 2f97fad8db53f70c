/**
 * The inspector with real processes (bin/ctbridge.js): a relay with an
 * `http` and a `clienttracker` tunnel, an agent serving both (and egress),
 * a small target and the sample Client Tracker provider on loopback.
 * Entries on both sides share the request id and hold no secret; a CT
 * registration and a pushResource name their message and validation;
 * `ctbridge tail --tunnel web --status 5xx` prints only those; `ctbridge
 * replay` sends a kept request to the target again.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCtSimulator, type CtSimulator } from '../../cli/demo/ct-simulator.js';
import { startSampleProvider, type SampleProvider } from '../../cli/demo/sample-provider.js';
import type { InspectEntry } from '../../src/inspect/entry.js';
import { freePorts } from '../helpers/ports.js';
import { runCli, runToEnd, stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';

const AUTH = 'Bearer auth-S3cr3t-9f8e7d';
const QUERY_SECRET = 'qs-T0ken-4c3b2a';
const BODY_SECRET = 'body-P4ssw0rd-1a2b';
const CT_KEY = 'ctkey-Z9y8X7w6V5';
const SECRETS = [AUTH.slice(7), QUERY_SECRET, BODY_SECRET, CT_KEY];

let relay: RelayInfo;
let agent: CtbridgeProcess;
let agentAdmin: string;
let target: http.Server;
let targetUrl: string;
let fixed = false;
let ct: CtSimulator;
let provider: SampleProvider;

beforeAll(async () => {
  target = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/boom' || (path === '/flaky' && !fixed)) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'it broke', password: BODY_SECRET }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': `sid=${QUERY_SECRET}` });
        res.end(JSON.stringify({ path, fixed, got: Buffer.concat(chunks).length }));
      }
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
  ct = await startCtSimulator();
  const [egressPort, adminPort] = await freePorts(2);
  provider = await startSampleProvider({ rpcBase: `http://127.0.0.1:${egressPort}/t/cioc/`, credentials: { login: 'jsmith', key: CT_KEY, ctid: '42' } });
  relay = await startRelayProcess({
    inspect: { bodies: '4KiB', maxBytes: '256KiB' },
    // lonely: declared, no agent serves it.
    tunnels: { web: {}, api: {}, lonely: {}, cioc: { kind: 'clienttracker', clientTracker: { rpcUrl: ct.url } } },
  });
  agent = await startAgentProcess({
    relayUrl: relay.url,
    tunnels: { web: { target: targetUrl }, api: { target: targetUrl }, cioc: { target: provider.url } },
    extra: { egress: { listen: `127.0.0.1:${egressPort}` }, inspect: { bodies: '4KiB', maxBytes: '256KiB' }, admin: { listen: `127.0.0.1:${adminPort}` } },
  });
  agentAdmin = `http://127.0.0.1:${adminPort}`;
});

afterAll(async () => {
  await stopAll();
  await provider?.close();
  await ct?.close();
  await new Promise((resolve) => target?.close(resolve));
});

async function getJson<T>(url: string): Promise<{ status: number; body: T; text: string }> {
  const r = await fetch(url);
  const text = await r.text();
  return { status: r.status, body: JSON.parse(text) as T, text };
}

/** The entry for `requestId` on an admin listener, once it is recorded (after the response is done). */
async function entryOn(admin: string, requestId: string): Promise<{ entry: InspectEntry; text: string }> {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${admin}/api/exchanges/${requestId}`);
    const text = await r.text();
    if (r.status === 200) return { entry: JSON.parse(text) as InspectEntry, text };
    // Recorded when the exchange closes, just after the caller has its answer.
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`no entry ${requestId} on ${admin}`);
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

describe('inspector: recent exchanges on both sides', () => {
  it('entries on the relay and the agent share the request id, and hold no secret', async () => {
    const r = await fetch(`${relay.url}/t/web/items?token=${QUERY_SECRET}&page=2`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'bob', password: BODY_SECRET }),
    });
    expect(r.status).toBe(200);
    const id = r.headers.get('x-ctbridge-request-id')!;
    const onRelay = await entryOn(relay.adminUrl, id);
    const onAgent = await entryOn(agentAdmin, id);
    for (const { entry, text } of [onRelay, onAgent]) {
      expect(entry.requestId).toBe(id);
      expect(entry.tunnel).toBe('web');
      expect(entry.path).toBe('/items?token=[REDACTED]&page=2');
      expect(entry.status).toBe(200);
      expect(entry.requestHeaders).toContainEqual(['authorization', '[REDACTED]']);
      expect(entry.requestBody?.text).toContain('"password": "[REDACTED]"');
      expect(entry.responseBody?.text).toContain('"fixed": false');
      expectNoSecret(text);
    }
    expect(onRelay.entry.side).toBe('relay');
    expect(onRelay.entry.servedBy).toBe('acme-1');
    expect(onRelay.entry.responseHeaders).toContainEqual(['set-cookie', '[REDACTED]']);
    expect(onAgent.entry.side).toBe('agent');
    expect(onAgent.entry.servedBy).toBe(targetUrl);
    expect(onAgent.entry.firstByteMs).toBeGreaterThanOrEqual(0);
    expect(onAgent.entry.firstByteMs).toBeLessThanOrEqual(onAgent.entry.durationMs);
    expect(onAgent.entry.replayable).toBe(true);

    const list = await getJson<{ entries: InspectEntry[]; bytes: number; maxBytes: number }>(`${relay.adminUrl}/api/exchanges?tunnel=web&requestId=${id}`);
    expect(list.body.entries.map((e) => e.requestId)).toEqual([id]);
    expect(list.body.bytes).toBeLessThanOrEqual(list.body.maxBytes);
    const page = await fetch(`${agentAdmin}/exchanges/${id}`);
    expect(page.status).toBe(200);
    expectNoSecret(await page.text());
  });

  it('keeps a request the relay refused for a declared tunnel (no agent connected), not one for an unknown tunnel name', async () => {
    const lonely = await fetch(`${relay.url}/t/lonely/status`);
    expect(lonely.status).toBe(502);
    const id = lonely.headers.get('x-ctbridge-request-id')!;
    const { entry } = await entryOn(relay.adminUrl, id);
    expect(entry).toMatchObject({ tunnel: 'lonely', status: 502, code: 'CTB_AGENT_NOT_CONNECTED', method: 'GET' });
    expect(entry.servedBy).toBeUndefined();
    const unknown = await fetch(`${relay.url}/t/no-such-tunnel/status`);
    expect(unknown.status).toBe(404);
    await unknown.text();
    // A refusal is kept when its answer is done: once a later one is kept, the unknown tunnel's would have been too.
    const later = await fetch(`${relay.url}/t/lonely/later`);
    await entryOn(relay.adminUrl, later.headers.get('x-ctbridge-request-id')!);
    const list = await getJson<{ entries: InspectEntry[] }>(`${relay.adminUrl}/api/exchanges?limit=1000`);
    expect(list.body.entries.some((e) => e.tunnel === 'no-such-tunnel')).toBe(false);
  });

  it('`ctbridge tail --tunnel web --status 5xx` prints only the web tunnel\'s 5xx exchanges', async () => {
    const tail = runCli('tail', ['tail', '--config', agent.configFile!, '--tunnel', 'web', '--status', '5xx']);
    const json = runCli('tail', ['tail', '--admin', relay.adminUrl, '--tunnel', 'web', '--status', '5xx', '--json']);
    for (const t of [tail, json]) {
      await new Promise<void>((resolve, reject) => {
        const onData = (): void => {
          if (t.stderr.includes('tailing the exchanges')) resolve();
        };
        t.child.stderr!.on('data', onData);
        void t.exited.then(() => reject(new Error(`tail exited: ${t.stderr}`)));
        onData();
      });
    }
    const ids: Record<string, string> = {};
    for (const [name, url] of [['ok', '/t/web/ok'], ['otherTunnel', '/t/api/boom'], ['boom', `/t/web/boom?token=${QUERY_SECRET}`]] as const) {
      const r = await fetch(`${relay.url}${url}`, { headers: { authorization: AUTH } });
      await r.text();
      ids[name] = r.headers.get('x-ctbridge-request-id')!;
    }
    // Entries arrive in order: once the last one is printed, the others would have been too.
    await tail.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes(ids.boom!));
    const printed = tail.lines.map((l) => String(l.msg));
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(new RegExp(`agent  web  ${ids.boom}  GET /boom\\?token=\\[REDACTED\\]  500  \\d`));
    expectNoSecret(tail.allOutput);
    // --json: the whole entry, one a line, redacted the same way (the relay's side here).
    const line = await json.waitForLog((l) => l.requestId === ids.boom);
    expect(json.lines).toHaveLength(1);
    expect(line.side).toBe('relay');
    expect(JSON.stringify(line.requestHeaders)).toContain('"authorization","[REDACTED]"');
    expect((line.responseBody as { text: string }).text).toContain('"password": "[REDACTED]"');
    expectNoSecret(json.allOutput);
    await tail.stop();
    await json.stop();
  });

  it('`ctbridge replay` sends a kept request to the target again and shows both answers; the listener wants X-Ctbridge-Admin', async () => {
    fixed = false;
    const first = await fetch(`${relay.url}/t/web/flaky`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(first.status).toBe(500);
    const id = first.headers.get('x-ctbridge-request-id')!;
    await entryOn(agentAdmin, id);
    const bare = await fetch(`${agentAdmin}/api/exchanges/${id}/replay`, { method: 'POST' });
    expect(bare.status).toBe(403);
    expect(await bare.text()).toContain('X-Ctbridge-Admin: 1');
    const crossSite = await fetch(`${agentAdmin}/api/exchanges/${id}/replay`, { method: 'POST', headers: { 'x-ctbridge-admin': '1', origin: 'http://evil.example' } });
    expect(crossSite.status).toBe(403);
    const onRelay = await fetch(`${relay.adminUrl}/api/exchanges/${id}/replay`, { method: 'POST', headers: { 'x-ctbridge-admin': '1' } });
    expect(onRelay.status).toBe(404);

    fixed = true;
    const run = await runToEnd(['replay', id, '--config', agent.configFile!]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/status\s+500\s+200/);
    expect(run.stdout).toContain('"fixed": true');
    expect(run.stdout).toContain('"got": 5');
    expectNoSecret(run.stdout);
    const replays = await getJson<{ entries: InspectEntry[] }>(`${agentAdmin}/api/exchanges?tunnel=web`);
    expect(replays.body.entries.find((e) => e.replayOf === id)?.status).toBe(200);
  });
});

describe('inspector: memory under load', () => {
  it('many exchanges with big headers keep both rings within inspect.maxBytes', async () => {
    const big = 'v'.repeat(10 * 1024);
    let sent = 0;
    const worker = async (): Promise<void> => {
      while (sent < 120) {
        sent++;
        const r = await fetch(`${relay.url}/t/web/load?i=${sent}`, { headers: { 'x-big': big } });
        expect(r.status).toBe(200);
        await r.text();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    for (const admin of [relay.adminUrl, agentAdmin]) {
      const { body } = await getJson<{ kept: number; bytes: number; maxBytes: number; entries: InspectEntry[] }>(`${admin}/api/exchanges?limit=1000`);
      expect(body.maxBytes).toBe(256 * 1024);
      expect(body.bytes).toBeLessThanOrEqual(body.maxBytes);
      // 120 entries of >20 KiB each would not fit: the oldest went.
      expect(body.kept).toBeLessThan(40);
      expect(body.entries[0]?.requestHeaders).toContainEqual(['x-big', big]);
    }
  });
});

describe('inspector: Client Tracker messages', () => {
  it('a registration through the relay: message, validation and the URL rewrite', async () => {
    const reg = await ct.register(`${relay.url}/t/cioc/ct/ctregister.asp`);
    expect(reg.status).toBe(200);
    const id = String(reg.headers['x-ctbridge-request-id']);
    const { entry } = await entryOn(relay.adminUrl, id);
    expect(entry.ct).toEqual({ message: 'registration', validation: 'valid', rewritten: true });
    const onAgent = await entryOn(agentAdmin, id);
    expect(onAgent.entry.tunnel).toBe('cioc');
  });

  it('a pushResource and an invalid one through the agent egress: message, validation, first error line; the key never shows', async () => {
    const push = await provider.pushResource({ id: 'ZZZ00123' });
    expect(push.status).toBe(200);
    const id = String(push.headers['x-ctbridge-request-id']);
    const onAgent = await entryOn(agentAdmin, id);
    expect(onAgent.entry.kind).toBe('egress');
    expect(onAgent.entry.ct).toMatchObject({ message: 'pushResource', validation: 'valid' });
    expect(onAgent.entry.requestBody?.text).toContain('<key>[REDACTED]</key>');
    expectNoSecret(onAgent.text);
    const onRelay = await entryOn(relay.adminUrl, id);
    expect(onRelay.entry.ct?.message).toBe('pushResource');
    expect(onRelay.entry.status).toBe(200);
    expectNoSecret(onRelay.text);

    const bad = await provider.postRaw('add_resource',
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<pushResource xmlns="http://clienttracker.cioc.ca/schema/"><login>jsmith</login><key>${CT_KEY}</key>\n` +
      '<resourceItem><id>ZZZ00123</id></resourceItem></pushResource>');
    expect(bad.status).toBe(400);
    // The agent records the message as it answers it.
    const list = await getJson<{ entries: InspectEntry[] }>(`${agentAdmin}/api/exchanges?code=CTB_XML_INVALID`);
    const entry = list.body.entries[0]!;
    expect(entry.ct).toMatchObject({ message: 'pushResource', validation: 'invalid' });
    expect(entry.ct?.firstError).toMatch(/^line \d+/);
    expectNoSecret(JSON.stringify(entry));
  });
});
