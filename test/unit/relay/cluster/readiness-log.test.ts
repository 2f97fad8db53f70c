/**
 * A relay node says in its log when it becomes ready in the cluster (every
 * node it knows tried once: /readyz answers 200 from then on) and when it
 * stops being (a new node to try). Regression (review): nothing was logged,
 * so tests (and operators) polled /readyz to learn it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../../../../relay/cluster/index.js';
import { AgentRegistry } from '../../../../relay/agent-registry.js';
import { parseRelayConfig, type ClusterConfig } from '../../../../src/config/index.js';
import { freePorts } from '../../../helpers/ports.js';
import { LogCapture } from '../../agent/helpers.js';

const SECRET = 'cluster-secret-0123456789abcdef-0123456789';

function clusterConfig(listen: string, peers: string[]): ClusterConfig {
  return parseRelayConfig({
    auth: { secret: 'test-secret-0123456789abcdef-0123456789' },
    cluster: { nodeId: 'n1', listen, secret: SECRET, peers: { static: peers, refresh: '1h' } },
  }, 'relay.yaml', {}).cluster!;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('cluster readiness in the log', () => {
  it("logs 'cluster node ready' once every known node was tried, and 'not ready' while a node added by a reload is not tried yet", async () => {
    // Two ports no node listens on: each link fails at once (refused), which counts as tried.
    const [listen, gone1, gone2] = await freePorts(3);
    const logs = new LogCapture();
    const config = clusterConfig(`127.0.0.1:${listen}`, [`127.0.0.1:${gone1}`]);
    const cluster = new Cluster({
      config, file: 'relay.yaml', registry: new AgentRegistry(100), log: logs.logger,
      window: () => 256 * 1024, heartbeat: () => ({ interval: 10_000, timeout: 30_000 }), maxIncoming: () => 100,
      connectTimeout: 2000, handshakeTimeout: () => 2000,
    });
    cleanups.push(() => cluster.close());
    await cluster.start();
    const ready = await logs.waitFor('cluster node ready');
    expect(ready).toMatchObject({ level: 30, nodeId: 'n1', nodes: ['n1'], peers: { known: 1, connected: 0 } });
    expect(cluster.synced).toBe(true);

    await cluster.reconfigure(clusterConfig(`127.0.0.1:${listen}`, [`127.0.0.1:${gone1}`, `127.0.0.1:${gone2}`]));
    const notReady = await logs.waitFor('cluster node not ready: linking to nodes not tried yet');
    expect(notReady).toMatchObject({ level: 30, nodeId: 'n1', waitingFor: [`127.0.0.1:${gone2}`] });
    await logs.waitFor('cluster node ready', (l) => logs.lines.indexOf(l) > logs.lines.indexOf(notReady));
    expect(logs.lines.filter((l) => l.msg === 'cluster node ready')).toHaveLength(2);
  });
});
