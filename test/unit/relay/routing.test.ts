import { describe, expect, it } from 'vitest';
import { routeRequest } from '../../../relay/routing.js';
import { pathAllowed } from '../../../src/http/request-path.js';

describe('routeRequest', () => {
  it('takes the tunnel from /t/<tunnel>/ and keeps the rest byte for byte', () => {
    expect(routeRequest('/t/cioc/ct/ctfetch.asp?num=%26%2F%3F%23&x=[ID]', undefined, undefined)).toEqual({
      tunnel: 'cioc',
      url: '/ct/ctfetch.asp?num=%26%2F%3F%23&x=[ID]',
      path: '/ct/ctfetch.asp',
    });
  });

  it('maps /t/<tunnel> and /t/<tunnel>?q to the root', () => {
    expect(routeRequest('/t/ucws', undefined, undefined)?.url).toBe('/');
    expect(routeRequest('/t/ucws?x=1', undefined, undefined)?.url).toBe('/?x=1');
  });

  it('keeps double slashes and encoded bytes', () => {
    expect(routeRequest('/t/a//b/%E4%B8%AD', undefined, undefined)?.url).toBe('//b/%E4%B8%AD');
  });

  it('routes <tunnel>.<baseDomain> when configured', () => {
    expect(routeRequest('/x?y', 'cioc.tunnels.example.com:443', 'tunnels.example.com')).toMatchObject({ tunnel: 'cioc', url: '/x?y' });
    expect(routeRequest('/x', 'other.example.com', 'tunnels.example.com')).toBeNull();
  });

  it('returns null for URLs that name no tunnel', () => {
    expect(routeRequest('/', undefined, undefined)).toBeNull();
    expect(routeRequest('/healthz', undefined, undefined)).toBeNull();
  });

  it.each(['/t/a/../b', '/t/a/%2e%2e/b', '/t/a/%2E%2e', '/t/a/x/..%2fy', '/t/a/..%5Cb', '/t/a/./b', '/t/a/x\\..\\y'])('refuses dot segments: %s', (url) => {
    expect(() => routeRequest(url, undefined, undefined)).toThrow(expect.objectContaining({ code: 'CTB_BAD_REQUEST' }));
  });

  it('does not mistake dots inside names for dot segments', () => {
    expect(routeRequest('/t/a/ct/ctfetch.asp', undefined, undefined)?.path).toBe('/ct/ctfetch.asp');
    expect(routeRequest('/t/a/...', undefined, undefined)?.path).toBe('/...');
  });

  it('refuses bad percent-encoding and bad tunnel names', () => {
    expect(() => routeRequest('/t/a/%E4%B8', undefined, undefined)).toThrow(expect.objectContaining({ code: 'CTB_BAD_REQUEST' }));
    expect(() => routeRequest('/t/Bad_Name/x', undefined, undefined)).toThrow(expect.objectContaining({ code: 'CTB_TUNNEL_UNKNOWN' }));
    expect(() => routeRequest('/t/%2e%2e/x', undefined, undefined)).toThrow(expect.objectContaining({ code: 'CTB_TUNNEL_UNKNOWN' }));
  });
});

describe('pathAllowed', () => {
  const list = ['/ct/ctregister.asp', '/api/'];
  it('allows exact paths and prefixes ending in /', () => {
    expect(pathAllowed('/ct/ctregister.asp', list)).toBe(true);
    expect(pathAllowed('/api/x/y', list)).toBe(true);
    expect(pathAllowed('/ct/ctregister.aspx', list)).toBe(false);
    expect(pathAllowed('/api', list)).toBe(false);
    expect(pathAllowed('/anything', undefined)).toBe(true);
  });
});
