import { describe, expect, it } from 'vitest';
import { parseRelayConfig } from '../../../src/config/index.js';
import { describeChanges, undeclaredServed, weakenedPolicies } from '../../../relay/policy-changes.js';

const SECRET = 'test-secret-0123456789abcdef-0123456789';
const relay = (extra: Record<string, unknown>) => parseRelayConfig({ auth: { secret: SECRET }, ...extra }, 'relay.yaml', {});
const all = () => true;

describe('weakenedPolicies (issue 12, finding 5: removing a policy on reload opened the tunnel silently)', () => {
  it('reports a served tunnel that relay.yaml no longer declares, and what it lost', () => {
    const prev = relay({ tunnels: { locked: { allowFrom: ['10.0.0.0/8'], allowPaths: ['/api/'] } } });
    const changes = weakenedPolicies(prev, relay({ tunnels: {} }), all, ['locked']);
    expect(changes).toEqual([{ tunnel: 'locked', change: expect.stringMatching(/^no longer declared in relay\.yaml, but an agent still serves it: now open to every address on every path \(lost its allowFrom and allowPaths\); .*requireDeclaredTunnels: true/) }]);
  });

  it('in strict mode says the tunnel is not served any more', () => {
    const prev = relay({ requireDeclaredTunnels: true, tunnels: { locked: { allowFrom: ['10.0.0.0/8'] } } });
    const next = relay({ requireDeclaredTunnels: true, tunnels: {} });
    expect(weakenedPolicies(prev, next, all, ['locked'])).toEqual([{ tunnel: 'locked', change: 'no longer declared in relay.yaml: not served any more (requireDeclaredTunnels)' }]);
    expect(undeclaredServed(next, ['locked', 'other', 'locked'])).toEqual(['locked', 'other']);
    expect(undeclaredServed(relay({ tunnels: {} }), ['locked'])).toEqual([]);
  });

  it('reports allowFrom and allowPaths removed or widened, kind no longer clienttracker, a larger body limit', () => {
    const prev = relay({ tunnels: { a: { allowFrom: ['10.0.0.0/8', '2001:db8::/32'], allowPaths: ['/api/', '/x'] }, b: { allowFrom: ['10.0.0.0/8'], allowPaths: ['/api/'] }, c: { maxRequestBody: '1KiB' } } });
    const next = relay({ tunnels: { a: { allowFrom: ['10.1.0.0/16', '2001:db8:1::/48', '192.168.0.0/16'], allowPaths: ['/api/v2/', '/x', '/admin/'] }, b: {}, c: { maxRequestBody: '2KiB' } } });
    expect(weakenedPolicies(prev, next, all, [])).toEqual([
      { tunnel: 'a', change: 'allowFrom widened: now also 192.168.0.0/16' },
      { tunnel: 'a', change: 'allowPaths widened: now also /admin/' },
      { tunnel: 'b', change: 'allowFrom removed: any address may call it' },
      { tunnel: 'b', change: 'allowPaths removed: every path is open' },
      { tunnel: 'c', change: 'maxRequestBody raised from 1024 to 2048 bytes' },
    ]);
  });

  it('says nothing for tightened policies, unchanged ones, or tunnels no agent serves', () => {
    const prev = relay({ tunnels: { a: { allowFrom: ['10.0.0.0/8'] }, idle: { allowFrom: ['10.0.0.0/8'] } } });
    expect(weakenedPolicies(prev, relay({ tunnels: { a: { allowFrom: ['10.1.0.0/16'], allowPaths: ['/api/'] } } }), (t) => t === 'a', ['a'])).toEqual([]);
    expect(weakenedPolicies(prev, prev, all, ['a', 'undeclared'])).toEqual([]);
  });

  it('reports undeclared served tunnels when requireDeclaredTunnels is turned off', () => {
    const changes = weakenedPolicies(relay({ requireDeclaredTunnels: true }), relay({}), all, ['extra']);
    expect(changes).toEqual([{ tunnel: 'extra', change: 'requireDeclaredTunnels turned off: this undeclared tunnel is now served to every address on every path' }]);
  });

  it('describes the changes in one line for the reload answer', () => {
    expect(describeChanges([], [])).toBe('');
    expect(describeChanges([{ tunnel: 'b', change: 'allowFrom removed: any address may call it' }], ['b', 'x'])).toBe(
      'policy weakened for tunnels agents serve: b: allowFrom removed: any address may call it; not served (not declared in relay.yaml, requireDeclaredTunnels is on): x',
    );
  });

  it('allowFrom: a range inside an old one is no widening; a wider prefix, another family or a spelled-out IPv6 form is judged by the addresses', () => {
    const prev = relay({ tunnels: { a: { allowFrom: ['10.1.0.0/16', '2001:db8::/32', '192.0.2.7'] } } });
    const widened = (allowFrom: string[]) => weakenedPolicies(prev, relay({ tunnels: { a: { allowFrom } } }), all, []).map((c) => c.change);
    expect(widened(['10.1.2.0/24', '10.1.255.255', '2001:0db8:0:1::/64', '192.0.2.7/32'])).toEqual([]);
    expect(widened(['10.0.0.0/8'])).toEqual(['allowFrom widened: now also 10.0.0.0/8']);
    expect(widened(['10.2.0.0/24', '2001:db9::/48', '192.0.2.8'])).toEqual(['allowFrom widened: now also 10.2.0.0/24, 2001:db9::/48, 192.0.2.8/32']);
  });
});
