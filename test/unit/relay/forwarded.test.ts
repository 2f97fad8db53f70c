import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { forwardedPairs, RELAY_OWNED, resolveForwarded } from '../../../relay/forwarded.js';
import { CidrList } from '../../../src/config/index.js';

function req(remoteAddress: string, headers: Record<string, string>): IncomingMessage {
  return { socket: { remoteAddress }, headers: { host: 'relay.example', ...headers } } as unknown as IncomingMessage;
}

describe('forwarded headers', () => {
  const none = new CidrList([]);
  const lb = new CidrList(['10.0.0.0/8']);

  it('ignores a client-sent X-Forwarded-For when the peer is not trusted', () => {
    const r = req('198.51.100.7', { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'https', forwarded: 'for=1.2.3.4', 'x-real-ip': '1.2.3.4' });
    const info = resolveForwarded(r, none, false);
    expect(info).toEqual({ client: '198.51.100.7', proto: 'http', host: 'relay.example' });
    // The relay's own pairs name only the peer; every header the client could forge them with is relay-owned (dropped from the caller's).
    expect(forwardedPairs(info, 'rid-1')).toEqual([
      'X-Forwarded-For', '198.51.100.7', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'relay.example', 'X-Ctbridge-Request-Id', 'rid-1',
    ]);
    for (const name of Object.keys(r.headers).filter((h) => h !== 'host')) expect(RELAY_OWNED.has(name), name).toBe(true);
  });

  it('leaves X-Forwarded-Host out when the caller sent no Host', () => {
    const r = { socket: { remoteAddress: '198.51.100.7' }, headers: {} } as unknown as IncomingMessage;
    const info = resolveForwarded(r, none, true);
    expect(info).toEqual({ client: '198.51.100.7', proto: 'https', host: '' });
    expect(forwardedPairs(info, 'rid-2')).toEqual(['X-Forwarded-For', '198.51.100.7', 'X-Forwarded-Proto', 'https', 'X-Ctbridge-Request-Id', 'rid-2']);
  });

  it('relay-owned names are lower case and cover every forwarding header', () => {
    expect([...RELAY_OWNED].sort()).toEqual(['forwarded', 'x-ctbridge-request-id', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-real-ip']);
  });

  it('believes a trusted load balancer and takes the rightmost untrusted address', () => {
    const r = req('10.0.0.5', { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.1.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' });
    expect(resolveForwarded(r, lb, false)).toEqual({ client: '203.0.113.9', proto: 'https', host: 'public.example' });
  });

  it('normalises IPv4-mapped IPv6 peers', () => {
    expect(resolveForwarded(req('::ffff:198.51.100.7', {}), none, true).client).toBe('198.51.100.7');
  });

  it('uses the peer when a trusted proxy sent no chain', () => {
    expect(resolveForwarded(req('10.0.0.5', {}), lb, true)).toEqual({ client: '10.0.0.5', proto: 'https', host: 'relay.example' });
  });
});
