/**
 * The inspector's ring: per-tunnel entry counts, the byte bound across all
 * tunnels (also under many large entries), filters, lookups, listeners.
 */
import { describe, expect, it } from 'vitest';
import { filterFromQuery, matches, type RawExchange } from '../../../src/inspect/entry.js';
import { ExchangeRing, entrySize } from '../../../src/inspect/ring.js';

let n = 0;
function entry(fields: Partial<RawExchange> = {}): RawExchange {
  n++;
  return {
    side: 'relay', startedAt: Date.now(), requestId: `id-${n}`, tunnel: 'web', kind: 'http',
    method: 'GET', target: '/', status: 200, durationMs: 1, bytesIn: 0, bytesOut: 0, requestHeaders: [], responseHeaders: [],
    ...fields,
  };
}

describe('ExchangeRing', () => {
  it('keeps at most `entries` per tunnel, newest first, each tunnel on its own', () => {
    const ring = new ExchangeRing({ entries: 3, maxBytes: 1024 ** 2 });
    for (let i = 0; i < 10; i++) ring.record(entry({ tunnel: 'a', target: `/a${i}` }));
    ring.record(entry({ tunnel: 'b', target: '/b' }));
    expect(ring.list({ tunnel: 'a' }).map((e) => e.path)).toEqual(['/a9', '/a8', '/a7']);
    expect(ring.list({ tunnel: 'b' }).map((e) => e.path)).toEqual(['/b']);
    expect(ring.size).toBe(4);
    expect(ring.list().map((e) => e.path)).toEqual(['/b', '/a9', '/a8', '/a7']);
    expect(ring.list().map((e) => e.seq)).toEqual([11, 10, 9, 8]);
  });

  it('stays within maxBytes across tunnels under many exchanges with big headers, dropping the oldest', () => {
    const maxBytes = 256 * 1024;
    const ring = new ExchangeRing({ entries: 1000, maxBytes });
    const big = 'x'.repeat(8 * 1024);
    let most = 0;
    for (let i = 0; i < 5000; i++) {
      ring.record(entry({ tunnel: `t${i % 7}`, requestHeaders: ['x-big', big, 'x-i', String(i)], responseHeaders: ['x-big', big] }));
      most = Math.max(most, ring.bytes);
    }
    expect(most).toBeLessThanOrEqual(maxBytes);
    expect(ring.bytes).toBeGreaterThan(maxBytes / 2);
    const kept = ring.list({}, 10_000);
    expect(kept.length).toBe(ring.size);
    // The newest are kept.
    expect(kept[0].requestHeaders[1]).toEqual(['x-i', '4999']);
    expect(kept.length * 2 * 2 * 8 * 1024).toBeLessThanOrEqual(ring.bytes);
  });

  it("counts a string's characters in its size, so the estimate bounds what is held", () => {
    const e = entry({ requestHeaders: ['x', 'y'.repeat(10_000)] });
    expect(entrySize(e)).toBeGreaterThan(20_000);
    expect(entrySize(e, { method: 'POST', target: '/', headers: [], body: Buffer.alloc(50_000) })).toBeGreaterThan(70_000);
    const body = Buffer.alloc(30_000);
    const withBody = entry({ requestBody: { head: body, total: 30_000, contentType: 'text/plain', contentEncoding: undefined } });
    expect(entrySize(withBody)).toBeGreaterThan(30_000);
    // A replay source whose body is the kept body is not counted twice.
    expect(entrySize(withBody, { method: 'POST', target: '/', headers: [], body })).toBeLessThan(31_000);
  });

  it('drops an entry larger than the whole bound at once', () => {
    const ring = new ExchangeRing({ entries: 10, maxBytes: 64 * 1024 });
    ring.record(entry({ target: '/small' }));
    ring.record(entry({ requestHeaders: ['x', 'z'.repeat(100_000)] }));
    expect(ring.bytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('finds by request id, filters by status class, code and tunnel, and tells listeners', () => {
    const ring = new ExchangeRing({ entries: 100, maxBytes: 1024 ** 2 });
    const heard: string[] = [];
    const stop = ring.subscribe((e) => heard.push(e.requestId));
    ring.record(entry({ requestId: 'ok', status: 200 }));
    ring.record(entry({ requestId: 'bad', status: 502, code: 'CTB_TARGET_UNREACHABLE' }));
    ring.record(entry({ requestId: 'other', tunnel: 'api', status: 503 }));
    stop();
    ring.record(entry({ requestId: 'late' }));
    expect(heard).toEqual(['ok', 'bad', 'other']);
    expect(ring.get('bad')?.status).toBe(502);
    expect(ring.list({ status: '5xx' }).map((e) => e.requestId)).toEqual(['other', 'bad']);
    expect(ring.list({ status: '5xx', tunnel: 'web' }).map((e) => e.requestId)).toEqual(['bad']);
    expect(ring.list({ code: 'CTB_TARGET_UNREACHABLE' }).map((e) => e.requestId)).toEqual(['bad']);
    expect(ring.list({ status: '200' }).map((e) => e.requestId)).toEqual(['late', 'ok']);
    expect(ring.replaySource('ok')).toBeUndefined();
  });

  it('applies smaller limits at once (a reload)', () => {
    const ring = new ExchangeRing({ entries: 10, maxBytes: 1024 ** 2 });
    for (let i = 0; i < 10; i++) ring.record(entry());
    ring.setLimits({ entries: 2, maxBytes: 1024 ** 2 });
    expect(ring.size).toBe(2);
  });

  it('reads filters from a query, ignoring the rest', () => {
    const f = filterFromQuery(new URLSearchParams('tunnel=web&status=5xx&code=&other=1'));
    expect(f).toEqual({ tunnel: 'web', status: '5xx' });
    expect(matches(entry({ status: 504 }), f)).toBe(true);
    expect(matches(entry({ status: 404 }), f)).toBe(false);
  });
});
