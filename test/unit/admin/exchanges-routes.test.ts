/**
 * The inspector's routes on a real admin listener (loopback): the list and
 * one entry as JSON, `inspect: off`, the live stream (server-sent events,
 * filtered), and the replay's checks (X-Ctbridge-Admin, cross-site).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectRoutes, withInspector, type ReplayAnswer } from '../../../src/admin/exchanges-routes.js';
import { startAdminServer, type AdminHandle, type AdminRoutes } from '../../../src/admin/server.js';
import { CidrList } from '../../../src/config/units.js';
import type { InspectEntry, RawExchange } from '../../../src/inspect/entry.js';
import { ExchangeRing } from '../../../src/inspect/ring.js';
import { createLogger } from '../../../src/log.js';

const base: AdminRoutes = {
  ready: () => ({ ready: true, reason: 'test' }),
  status: () => ({}),
  page: () => '<p>status</p>',
  metrics: async () => ({ contentType: 'text/plain', text: '' }),
  reload: async () => ({ ok: true, message: '' }),
};

let n = 0;
const entry = (fields: Partial<RawExchange> = {}): RawExchange => ({
  side: 'agent', startedAt: Date.now(), requestId: `r${++n}`, tunnel: 'web', kind: 'http', method: 'GET', target: '/',
  status: 200, durationMs: 1, bytesIn: 0, bytesOut: 0, requestHeaders: [], responseHeaders: [], ...fields,
});

let ring: ExchangeRing;
let on: AdminHandle;
let off: AdminHandle;
const replayed: string[] = [];

async function listen(routes: AdminRoutes): Promise<AdminHandle> {
  const admin = { listen: { host: '127.0.0.1', port: 0 }, fallbackPorts: [], allowFrom: new CidrList(['127.0.0.0/8']), hosts: [] };
  return (await startAdminServer(admin, 'agent.yaml', createLogger({ level: 'silent', name: 'agent' }), routes))!;
}

const url = (h: AdminHandle, path: string): string => `http://127.0.0.1:${h.address.port}${path}`;

beforeAll(async () => {
  ring = new ExchangeRing({ entries: 10, maxBytes: 1024 ** 2 });
  on = await listen(withInspector(inspectRoutes({
    role: 'agent',
    ring: () => ring,
    file: () => 'agent.yaml',
    replay: async (id): Promise<ReplayAnswer> => {
      replayed.push(id);
      const original = ring.get(id);
      return original ? { ok: true, original, replay: { ...original, requestId: `${id}-r1` } } : { ok: false, status: 404, error: 'no such exchange' };
    },
  }), base));
  off = await listen(withInspector(inspectRoutes({ role: 'relay', ring: () => undefined, file: () => 'relay.yaml' }), base));
});

afterAll(async () => {
  await on?.close();
  await off?.close();
});

describe('inspector routes', () => {
  it('lists entries (filtered, newest first) and shows one; 404 for one not kept', async () => {
    ring.record(entry({ requestId: 'a1', status: 200 }));
    ring.record(entry({ requestId: 'a2', status: 502, code: 'CTB_TARGET_UNREACHABLE' }));
    const list = await (await fetch(url(on, '/api/exchanges?status=5xx'))).json() as { entries: InspectEntry[]; kept: number };
    expect(list.entries.map((e) => e.requestId)).toEqual(['a2']);
    expect(list.kept).toBeGreaterThanOrEqual(2);
    expect(((await (await fetch(url(on, '/api/exchanges/a1'))).json()) as InspectEntry).status).toBe(200);
    const missing = await fetch(url(on, '/api/exchanges/nope'));
    expect(missing.status).toBe(404);
    expect((await fetch(url(on, '/exchanges?code=CTB_TARGET_UNREACHABLE'))).status).toBe(200);
    expect((await fetch(url(on, '/api/exchanges/%zz'))).status).toBe(400);
  });

  it('with inspect: off, says so and how to turn it on', async () => {
    const r = await fetch(url(off, '/api/exchanges'));
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: string }).error).toContain('inspect: off in relay.yaml');
    expect(await (await fetch(url(off, '/exchanges'))).text()).toContain('Nothing is kept');
  });

  it('streams new entries as server-sent events, only those passing the filter', async () => {
    const events: InspectEntry[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.get(url(on, '/api/exchanges/stream?tunnel=web&status=5xx'), (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let buf = '';
        let recorded = false;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          if (!recorded && buf.startsWith(': ctbridge agent exchanges')) {
            // Connected: the stream subscribed before its first bytes went out.
            recorded = true;
            ring.record(entry({ requestId: 's1', status: 200 }));
            ring.record(entry({ requestId: 's2', status: 503, tunnel: 'api' }));
            ring.record(entry({ requestId: 's3', status: 500 }));
          }
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data) events.push(JSON.parse(data) as InspectEntry);
          }
          if (events.some((e) => e.requestId === 's3')) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', reject);
    });
    expect(events.map((e) => e.requestId)).toEqual(['s3']);
  });

  it('replays only with X-Ctbridge-Admin: 1 and not from another site', async () => {
    ring.record(entry({ requestId: 'p1' }));
    const bare = await fetch(url(on, '/api/exchanges/p1/replay'), { method: 'POST' });
    expect(bare.status).toBe(403);
    const fetchSite = await fetch(url(on, '/api/exchanges/p1/replay'), { method: 'POST', headers: { 'x-ctbridge-admin': '1', 'sec-fetch-site': 'cross-site' } });
    expect(fetchSite.status).toBe(403);
    expect(replayed).toEqual([]);
    const ok = await fetch(url(on, '/api/exchanges/p1/replay'), { method: 'POST', headers: { 'x-ctbridge-admin': '1' } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { replay: InspectEntry }).replay.requestId).toBe('p1-r1');
    expect(replayed).toEqual(['p1']);
    expect((await fetch(url(off, '/api/exchanges/p1/replay'), { method: 'POST', headers: { 'x-ctbridge-admin': '1' } })).status).toBe(404);
  });
});
