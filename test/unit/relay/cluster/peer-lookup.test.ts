/**
 * Regression (review): every refresh looked cluster.peers.dns up twice, once
 * for who may dial this node and once for whom it dials. One lookup now
 * answers both (PeerAddresses.resolve returns its answers by name).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';

const lookups: string[] = [];
vi.mock('node:dns/promises', () => ({
  lookup: vi.fn(async (name: string) => {
    lookups.push(name);
    if (name === 'down.test') throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return [{ address: '127.0.0.9', family: 4 }];
  }),
}));

const { Cluster } = await import('../../../../relay/cluster/index.js');
const { AgentRegistry } = await import('../../../../relay/agent-registry.js');
const { PeerAddresses } = await import('../../../../relay/cluster/peer-addresses.js');
const { parseRelayConfig } = await import('../../../../src/config/index.js');

const log = pino({ level: 'silent' });
const clusters: InstanceType<typeof Cluster>[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.close();
  lookups.length = 0;
});

function clusterConfig(dns: string) {
  return parseRelayConfig({
    auth: { secret: 'test-secret-0123456789abcdef-0123456789' },
    cluster: { nodeId: 'n1', listen: '127.0.0.1:0', secret: 'cluster-secret-0123456789abcdef-0123456789', peers: { dns, port: 9, refresh: '1h' } },
  }, 'relay.yaml', {}).cluster!;
}

function start(dns: string) {
  const cluster = new Cluster({
    config: clusterConfig(dns), file: 'relay.yaml', registry: new AgentRegistry(10), log,
    window: () => 256 * 1024, heartbeat: () => ({ interval: 30_000, timeout: 90_000 }), maxIncoming: () => 100,
    connectTimeout: 1000, handshakeTimeout: () => 1000,
  });
  clusters.push(cluster);
  return cluster;
}

describe('cluster peers from DNS', () => {
  it('one refresh looks the name up once, and dials what it answered', async () => {
    const cluster = start('peers.test');
    await cluster.start();
    expect(lookups).toEqual(['peers.test']);
    expect(cluster.status().peers.map((p) => p.address)).toEqual(['127.0.0.9:9']);
  });

  it('a failed lookup is reported by name, and the nodes known so far are kept', async () => {
    const a = new PeerAddresses(clusterConfig('down.test').peers, log);
    const round = await a.resolve();
    expect(round.get('down.test')).toBeInstanceOf(Error);
    const cluster = start('down.test');
    await cluster.start();
    expect(cluster.status().peers).toEqual([]);
  });
});
