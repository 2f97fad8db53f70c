import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { ClusterPeers } from '../../../../src/config/index.js';
import { PeerAddresses } from '../../../../relay/cluster/peer-addresses.js';

const log = pino({ level: 'silent' });

function peers(over: Partial<ClusterPeers> = {}): ClusterPeers {
  return { dns: undefined, port: 7946, static: [], refresh: 5000, acceptAnyAddress: false, ...over };
}

describe('who may open a node link', () => {
  it('the static addresses, and IPv4 callers on a dual-stack listener alike', async () => {
    const a = new PeerAddresses(peers({ static: [{ host: '10.0.0.11', port: 7946 }, { host: '::1', port: 7946 }] }), log);
    await a.resolve();
    expect(await a.allows('10.0.0.11')).toBe(true);
    expect(await a.allows('::ffff:10.0.0.11')).toBe(true);
    expect(await a.allows('::1')).toBe(true);
    expect(await a.allows('10.0.0.12')).toBe(false);
  });

  it('what the names resolve to (static host names and the DNS name)', async () => {
    const a = new PeerAddresses(peers({ static: [{ host: 'localhost', port: 7946 }] }), log);
    await a.resolve();
    expect(await a.allows('127.0.0.1')).toBe(true);
    const d = new PeerAddresses(peers({ dns: 'localhost' }), log);
    expect(await d.allows('127.0.0.1')).toBe(true); // looked up on the first miss
  });

  it('a name that does not resolve keeps its last answers and lets nobody else in', async () => {
    const a = new PeerAddresses(peers({ dns: 'no-such-host.invalid' }), log);
    await a.resolve();
    expect(await a.allows('127.0.0.1')).toBe(false);
    expect(a.size).toBe(0);
  });

  it('acceptAnyAddress lets anyone knock (the secret is still checked)', async () => {
    const a = new PeerAddresses(peers({ acceptAnyAddress: true }), log);
    expect(await a.allows('203.0.113.9')).toBe(true);
  });

  it('a reload with other peers applies at once', async () => {
    const a = new PeerAddresses(peers({ static: [{ host: '10.0.0.11', port: 7946 }] }), log);
    await a.resolve();
    await a.update(peers({ static: [{ host: '10.0.0.12', port: 7946 }] }));
    expect(await a.allows('10.0.0.11')).toBe(false);
    expect(await a.allows('10.0.0.12')).toBe(true);
  });

  it('many callers from unknown addresses cause at most one fresh lookup per second', async () => {
    const a = new PeerAddresses(peers({ static: [{ host: '10.0.0.11', port: 7946 }] }), log);
    let lookups = 0;
    const resolve = a.resolve.bind(a);
    a.resolve = () => {
      lookups++;
      return resolve();
    };
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => a.allows(`192.0.2.${i}`)));
    expect(answers.every((x) => x === false)).toBe(true);
    expect(lookups).toBe(1);
  });
});
