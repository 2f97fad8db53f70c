import { describe, expect, it } from 'vitest';
import { parseRelayConfig, type ClusterConfig } from '../../../../src/config/index.js';
import { clusterRestartOnly } from '../../../../relay/cluster/reload.js';

const SECRET = 'cluster-secret-0123456789abcdef-0123456789';

function cluster(over: Record<string, unknown> = {}): ClusterConfig {
  const cfg = parseRelayConfig({
    auth: { secret: 'test-secret-0123456789abcdef-0123456789' },
    cluster: { nodeId: 'n1', listen: '127.0.0.1:7946', secret: SECRET, peers: { static: ['127.0.0.1:7947'] }, ...over },
  }, 'relay.yaml', {});
  return cfg.cluster!;
}

describe('what a reload may change in cluster:', () => {
  it('secrets and peers apply live', () => {
    expect(clusterRestartOnly(cluster(), cluster({ secret: `new-${SECRET}`, previousSecret: SECRET, peers: { static: ['127.0.0.1:7948'] } }))).toEqual([]);
    expect(clusterRestartOnly(undefined, undefined)).toEqual([]);
  });

  it('refuses a new listen address, naming the key and the restart', () => {
    expect(clusterRestartOnly(cluster(), cluster({ listen: '127.0.0.1:7950' }))).toEqual([
      'cluster.listen changed (127.0.0.1:7946 → 127.0.0.1:7950): restart the relay to apply it',
    ]);
  });

  it('refuses a new node id', () => {
    expect(clusterRestartOnly(cluster(), cluster({ nodeId: 'n2' }))).toEqual(['cluster.nodeId changed (n1 → n2): restart the relay to apply it']);
  });

  it('refuses turning TLS on', () => {
    const tls = { cert: 'tls/relay.crt', key: 'tls/relay.key' };
    const withTls = parseRelayConfig({
      auth: { secret: 'test-secret-0123456789abcdef-0123456789' },
      cluster: { nodeId: 'n1', listen: '127.0.0.1:7946', secret: SECRET, peers: { static: ['127.0.0.1:7947'] }, tls },
    }, new URL('../../../fixtures/config/relay.yaml', import.meta.url).pathname, {}).cluster!;
    expect(clusterRestartOnly(cluster(), withTls)).toEqual(['cluster.tls changed (off → TLS): restart the relay to apply it']);
  });

  it('refuses adding or removing the cluster section', () => {
    expect(clusterRestartOnly(undefined, cluster())[0]).toMatch(/^cluster \(added\): .*restart the relay/);
    expect(clusterRestartOnly(cluster(), undefined)[0]).toMatch(/^cluster \(removed\)/);
  });
});
