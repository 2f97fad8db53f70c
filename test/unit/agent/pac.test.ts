import { describe, expect, it } from 'vitest';
import { compilePac, parsePacAnswer, PacError } from '../../../agent/pac.js';

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
});
