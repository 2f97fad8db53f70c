import { describe, expect, it } from 'vitest';
import { crossSiteRefusal, hostOf, hostRefusal, securityHeaders } from '../../../src/admin/guard.js';
import { PAGE_STYLE_HASH } from '../../../src/admin/page.js';

describe('admin listener: Host must be one of its own names (issue 12, DNS rebinding)', () => {
  it('reads the host name out of a Host value', () => {
    expect(hostOf('127.0.0.1:9090')).toBe('127.0.0.1');
    expect(hostOf('LocalHost')).toBe('localhost');
    expect(hostOf('[::1]:9091')).toBe('::1');
    expect(hostOf('[fe80::1%eth0]:9091')).toBe('fe80::1%eth0');
    expect(hostOf('status.corp.example.:80')).toBe('status.corp.example');
    expect(hostOf('a b')).toBeUndefined();
    expect(hostOf('[::1')).toBeUndefined();
    expect(hostOf('x:99999999')).toBeUndefined();
  });

  it('accepts IP literals, localhost on any port, names in admin.hosts, and an absent Host', () => {
    for (const h of ['127.0.0.1:9090', '127.0.0.1', '10.1.2.3:9090', '[::1]:9091', 'localhost:9090', 'localhost', 'LOCALHOST:1']) {
      expect(hostRefusal(h, []), h).toBeUndefined();
    }
    expect(hostRefusal('status.corp.example:9090', ['status.corp.example'])).toBeUndefined();
    expect(hostRefusal('Status.Corp.Example', ['status.corp.example'])).toBeUndefined();
    expect(hostRefusal(undefined, [])).toBeUndefined();
  });

  it('refuses any other name, look-alikes of localhost, and malformed values', () => {
    for (const h of ['rebind.attacker.example:9090', 'localhost.attacker.example', 'evil.localhost', '127.0.0.1.nip.io:9090', 'status.corp.example']) {
      expect(hostRefusal(h, []), h).toMatch(/does not answer for.*admin\.hosts/);
    }
    expect(hostRefusal('rebind.attacker.example', ['status.corp.example'])).toBeDefined();
    expect(hostRefusal('a/b', [])).toBe('the Host header is malformed');
  });
});

describe('admin listener: POST /reload refuses what a page of another site can send (issue 12)', () => {
  const ok = { host: '127.0.0.1:9090', 'x-ctbridge-admin': '1' };

  it('accepts ctbridge reload (the header, no Origin) and a same-origin browser request with the header', () => {
    expect(crossSiteRefusal(ok)).toBeUndefined();
    expect(crossSiteRefusal({ ...ok, origin: 'http://127.0.0.1:9090', 'sec-fetch-site': 'same-origin' })).toBeUndefined();
    expect(crossSiteRefusal({ ...ok, 'sec-fetch-site': 'none' })).toBeUndefined();
  });

  it('refuses a simple form post without the header (urlencoded, text/plain)', () => {
    expect(crossSiteRefusal({ host: '127.0.0.1:9090', 'content-type': 'application/x-www-form-urlencoded' })).toMatch(/X-Ctbridge-Admin: 1/);
    expect(crossSiteRefusal({ host: '127.0.0.1:9090', 'content-type': 'text/plain', 'x-ctbridge-admin': 'yes' })).toMatch(/X-Ctbridge-Admin: 1/);
  });

  it('refuses cross-site and same-site fetch metadata, and a foreign or opaque Origin, even with the header', () => {
    expect(crossSiteRefusal({ ...ok, 'sec-fetch-site': 'cross-site' })).toMatch(/another site \(Sec-Fetch-Site: cross-site\)/);
    expect(crossSiteRefusal({ ...ok, 'sec-fetch-site': 'same-site' })).toMatch(/same-site/);
    expect(crossSiteRefusal({ ...ok, 'sec-fetch-site': '<script>' })).toMatch(/Sec-Fetch-Site: other/);
    expect(crossSiteRefusal({ ...ok, origin: 'http://evil.example' })).toMatch(/Origin is not this admin listener/);
    expect(crossSiteRefusal({ ...ok, origin: 'null' })).toMatch(/Origin/);
    expect(crossSiteRefusal({ ...ok, origin: 'http://127.0.0.1:9091' })).toMatch(/Origin/);
    expect(crossSiteRefusal({ 'x-ctbridge-admin': '1', origin: 'http://127.0.0.1:9090' })).toMatch(/Origin/);
  });
});

describe('admin listener: response headers', () => {
  it('allow the page its own style sheet and nothing else, no framing, no sniffing, no CORS', () => {
    const h = securityHeaders({ styles: [PAGE_STYLE_HASH] });
    expect(h['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]+=*'; base-uri/);
    expect(h['content-security-policy']).not.toContain('script-src');
    expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(Object.keys(h).some((k) => k.startsWith('access-control-'))).toBe(false);
  });

  it('allow a fixed inline script by its hash only, and requests to this listener only', () => {
    const csp = securityHeaders({ styles: [PAGE_STYLE_HASH], scripts: ['sha256-abc='] })['content-security-policy'];
    expect(csp).toContain("script-src 'sha256-abc='; connect-src 'self';");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });
});
