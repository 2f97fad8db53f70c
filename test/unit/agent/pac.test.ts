import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { compilePac, fetchPac, parsePacAnswer, PacError } from '../../../agent/pac.js';
import { RelayConnections } from '../../../agent/relay-connections.js';
import { FakeRelay, LogCapture, testConfig } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('PAC files', () => {
  it('reads lists of proxies with DIRECT fallback, skipping what ctbridge cannot use', () => {
    expect(parsePacAnswer('PROXY a.corp:3128; HTTPS [::1]:8443;DIRECT')).toEqual({
      hops: [{ kind: 'proxy', url: 'http://a.corp:3128' }, { kind: 'proxy', url: 'https://[::1]:8443' }, { kind: 'direct' }],
      skipped: [],
    });
    expect(parsePacAnswer('SOCKS5 s:1080; PROXY bad host')).toEqual({ hops: [], skipped: ['SOCKS5 s:1080', 'PROXY bad host'] });
  });

  it('evaluates the script in the sandbox, with the PAC functions but no Node', async () => {
    const find = await compilePac(
      'function FindProxyForURL(url, host) { if (shExpMatch(host, "*.example.com")) return "PROXY p:3128"; return typeof process === "undefined" && typeof require === "undefined" ? "DIRECT" : "PROXY leak:1"; }',
      'http://pac.test/proxy.pac',
    );
    expect(await find('https://relay.example.com/')).toBe('PROXY p:3128');
    expect(await find('https://other.test/')).toBe('DIRECT');
  });

  it('a script that throws or does not compile is a PacError naming the file', async () => {
    const throwing = await compilePac('function FindProxyForURL() { throw new Error("no route for you"); }', 'http://pac.test/x.pac');
    await expect(throwing('https://relay.example.com/')).rejects.toThrow(PacError);
    await expect(throwing('https://relay.example.com/')).rejects.toThrow(/x\.pac failed for https:\/\/relay\.example\.com\/: .*no route for you/);
    await expect(compilePac('function FindProxyForURL( {', 'http://pac.test/broken.pac').then((f) => f('https://r/'))).rejects.toThrow(/broken\.pac/);
  });

  it('a hostile PAC that loops for ever or allocates without end is stopped (PacError), the agent goes on', async () => {
    const looping = await compilePac('function FindProxyForURL() { while (true) {} }', 'http://pac.test/loop.pac');
    await expect(looping('https://relay.example/')).rejects.toThrow(PacError);
    const hungry = await compilePac('function FindProxyForURL() { var a = []; while (true) a.push(new Array(100000).join("x")); }', 'http://pac.test/hungry.pac');
    await expect(hungry('https://relay.example/')).rejects.toThrow(PacError);
    await expect(compilePac('while (true) {}', 'http://pac.test/top-level-loop.pac')).rejects.toThrow(PacError);
  });

  it('a PAC server that sends more than 1 MiB is cut off, with or without Content-Length', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/declared') res.writeHead(200, { 'content-length': String(8 << 20) });
      else res.writeHead(200); // chunked, no length
      const block = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (res.write(block));
      };
      res.on('drain', pump);
      res.on('close', () => res.off('drain', pump));
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(fetchPac(`${base}/declared`, 10_000)).rejects.toThrow(/larger than 1048576 bytes/);
      await expect(fetchPac(`${base}/endless`, 10_000)).rejects.toThrow(/larger than 1048576 bytes/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  // Regression (review): every relay URL's dial fetched the PAC file itself, at start and again at each reload.
  it('two relay URLs share one PAC fetch at start, and one more at a reload', async () => {
    let fetches = 0;
    const pacServer = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end('function FindProxyForURL() { return "DIRECT"; }');
    });
    pacServer.listen(0, '127.0.0.1');
    await once(pacServer, 'listening');
    cleanups.push(() => new Promise((resolve) => pacServer.close(() => resolve())));
    const relays = [await FakeRelay.start(), await FakeRelay.start()];
    for (const r of relays) cleanups.push(() => r.close());
    const config = { ...(await testConfig(relays[0]!.url, { t1: { target: 'http://127.0.0.1:9' } }, { proxy: `pac+http://127.0.0.1:${(pacServer.address() as AddressInfo).port}/proxy.pac` })), relays: relays.map((r) => r.url) };
    const logs = new LogCapture();
    const connections = new RelayConnections(logs.logger, () => undefined);
    cleanups.push(() => connections.closeAll('test over'));
    connections.apply(config);
    await Promise.all(relays.map((r) => r.connection(0)));
    expect(logs.lines.filter((l) => l.msg === 'PAC answer for the relay')).toHaveLength(2);
    expect(fetches).toBe(1);
    // A reload keeps both links; the PAC file is fetched again once, and each relay's answer logged again.
    const answers = (n: number) => logs.waitFor('PAC answer for the relay', () => logs.lines.filter((l) => l.msg === 'PAC answer for the relay').length >= n);
    connections.apply(config);
    await answers(4);
    expect(fetches).toBe(2);
  });
});
