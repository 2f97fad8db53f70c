/**
 * Three relay nodes on loopback behind a real HAProxy (round robin, health
 * checks on /readyz), two agents that know only the HAProxy URL, and one
 * agent that knows only node 1 (its tunnel lives on one node: the others
 * forward to it). Under load: every request succeeds on every node; a
 * SIGKILLed node fails only what was in flight on it, quickly; a rolling
 * restart fails nothing; a node added later serves within 10 s.
 */
import { WebSocket } from 'ws';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { freePorts } from '../helpers/ports.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { startHaproxy, type LbServer, type LoadBalancer } from '../helpers/haproxy.js';
import { request } from '../helpers/http.js';
import { failures, load as loadOn } from '../helpers/load.js';
import { stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { needs } from '../helpers/system.js';
import { startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

const CLUSTER_SECRET = 'cluster-secret-0123456789abcdef-0123456789';

interface Node extends LbServer {
  clusterPort: number;
  relay?: RelayInfo;
  history?: RelayInfo[];
}

let backend: Backend;
let lb: LoadBalancer;
const nodes: Node[] = [];
const agents: CtbridgeProcess[] = [];

async function startNode(n: Node): Promise<RelayInfo> {
  n.relay = await startRelayProcess({
    admin: { listen: `127.0.0.1:${n.adminPort}` },
    timeouts: { drainDelay: '1s', shutdownGrace: '10s' },
    cluster: {
      nodeId: n.name,
      listen: `127.0.0.1:${n.clusterPort}`,
      secret: CLUSTER_SECRET,
      peers: { static: nodes.map((x) => `127.0.0.1:${x.clusterPort}`), refresh: '1s' },
    },
    tunnels: { t: {}, solo: {} },
  }, n.port);
  (n.history ??= []).push(n.relay);
  return n.relay;
}

/** Resolves once the node is ready in the cluster (its /readyz answers 200 and the load balancer sends it traffic from then on). */
async function ready(n: Node): Promise<void> {
  await n.relay!.proc.waitForLog('cluster node ready');
}

/** Resolves once `agentId` has a connection on node `n`. */
function agentOn(n: Node, agentId: string): Promise<unknown> {
  return n.relay!.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === agentId, 20_000);
}

/** `workers` callers looping through the load balancer until stopped (every fourth request a POST with a body); every outcome recorded. */
const load = (path: string, workers = 50) =>
  loadOn((w, i) => (i % 4 === 3 ? [`${lb.url}${path}?w=${w}&i=${i}`, { method: 'POST', body: `body ${w} ${i}` }] : `${lb.url}${path}?w=${w}&i=${i}`), workers, 20_000);

const haproxy = needs('haproxy', 'the load balancer in front of the relay cluster');

haproxy.describe('relay cluster behind HAProxy', () => {
  beforeAll(async () => {
    backend = await startBackend();
    const ports = await freePorts(12);
    for (let i = 0; i < 4; i++) nodes.push({ name: `node-${i + 1}`, port: ports[3 * i], adminPort: ports[3 * i + 1], clusterPort: ports[3 * i + 2] });
    await Promise.all(nodes.slice(0, 3).map(startNode));
    await Promise.all(nodes.slice(0, 3).map(ready));
    lb = await startHaproxy(nodes, haproxy.path);
    const tunnels = { t: { target: backend.url } };
    for (const id of ['agent-a', 'agent-b']) {
      agents.push(await startAgentProcess({ relayUrl: lb.url, token: await tokenFor(['t'], id), tunnels }));
    }
    // The solo tunnel's agent knows only node 1: nodes 2 and 3 forward to it.
    agents.push(await startAgentProcess({ relayUrl: nodes[0].relay!.url, token: await tokenFor(['solo'], 'agent-solo'), tunnels: { solo: { target: backend.url } } }));
    // Each agent that knows only the load balancer ends up on every node.
    await Promise.all(nodes.slice(0, 3).flatMap((n) => [agentOn(n, 'agent-a'), agentOn(n, 'agent-b')]));
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await lb?.close();
    await backend?.close();
  });

  it('agents that know one URL connect to every node and learn the membership', async () => {
    for (const n of nodes.slice(0, 3)) {
      const status = await (await fetch(`http://127.0.0.1:${n.adminPort}/api/status`)).json() as { agents: { agentId: string }[]; cluster: { peers: { nodeId: string; state: string }[] } };
      expect(status.agents.map((a) => a.agentId)).toEqual(expect.arrayContaining(['agent-a', 'agent-b']));
      expect(status.cluster.peers.filter((p) => p.state === 'connected').map((p) => p.nodeId).sort()).toEqual(nodes.slice(0, 3).map((x) => x.name).filter((x) => x !== n.name));
    }
  });

  it('every request succeeds on every node, including tunnels whose agent is on another node', async () => {
    const statuses: number[] = [];
    for (const n of nodes.slice(0, 3)) {
      for (let i = 0; i < 10; i++) {
        statuses.push((await request(`${n.relay!.url}/t/t/direct-${i}`)).status);
        statuses.push((await request(`${n.relay!.url}/t/solo/forwarded-${i}`)).status);
      }
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Nodes 2 and 3 have no agent for solo: they forwarded to node 1.
    await nodes[1].relay!.proc.waitForLog((l) => l.msg === 'request' && l.tunnel === 'solo' && l.viaNode === 'node-1' && l.status === 200);
    await nodes[0].relay!.proc.waitForLog((l) => l.msg === 'forwarded request' && l.tunnel === 'solo' && l.fromNode === 'node-2');
    const traffic = load('/t/solo/lb', 50);
    await traffic.more(1000);
    await traffic.stop();
    expect(failures(traffic.results)).toEqual([]);
  });

  it('a WebSocket to a node without the agent is forwarded, and the metrics count it', async () => {
    const ws = new WebSocket(`${nodes[2].relay!.url.replace('http', 'ws')}/t/solo/events?via=node-3`);
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (d) => {
        messages.push(d.toString());
        if (messages.length === 1) ws.send('across two relay nodes');
        else resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    expect(JSON.parse(messages[0])).toEqual({ hello: '/events?via=node-3' });
    expect(messages[1]).toBe('across two relay nodes');
    const metrics = async (n: Node) => (await fetch(`http://127.0.0.1:${n.adminPort}/metrics`)).text();
    const value = (text: string, series: string) => Number(text.split('\n').find((l) => l.startsWith(series + ' '))?.split(' ')[1]);
    const forwarding = await metrics(nodes[2]);
    expect(value(forwarding, 'ctbridge_cluster_peers{state="connected"}')).toBe(2);
    expect(value(forwarding, 'ctbridge_cluster_exchanges_total{direction="sent"}')).toBeGreaterThan(0);
    expect(value(await metrics(nodes[0]), 'ctbridge_cluster_exchanges_total{direction="received"}')).toBeGreaterThan(0);
  });

  it('SIGKILL of one node under load fails only what was in flight on it, each within 2 s; the rest succeed', async () => {
    const traffic = load('/t/t/longpoll-kill', 50);
    await traffic.more(300);
    const victim = nodes[1];
    const before = traffic.results.length;
    const killedAt = Date.now();
    await victim.relay!.proc.stop('SIGKILL');
    await traffic.more(1500);
    await traffic.stop();
    const after = traffic.results.slice(before);
    const failed = failures(after);
    // At most the requests in flight at the kill (50 callers), each answered within 2 s of it.
    expect(failed.length).toBeLessThanOrEqual(50);
    for (const f of after.filter((r) => r.status !== 200 || !r.complete)) expect(f.at - killedAt).toBeLessThan(2000);
    // Everything after the first 2 s succeeded.
    expect(failures(after.filter((r) => r.at - killedAt > 2000))).toEqual([]);
    // Back for the next tests.
    await startNode(victim);
    await ready(victim);
    await Promise.all([agentOn(victim, 'agent-a'), agentOn(victim, 'agent-b')]);
  });

  it('a rolling restart of every node under load fails no request', async () => {
    const traffic = load('/t/t/rolling', 50);
    // When it fails: which answers failed when, next to HAProxy's view of the nodes going DOWN and UP.
    onTestFailed(() => {
      console.error(`HAProxy:\n${lb.output()}\nfailed answers:\n${traffic.results.filter((r) => r.status !== 200 || !r.complete).map((r) => `${new Date(r.at).toISOString()} ${r.status} ${r.code ?? ''} after ${Math.round(r.ms)} ms`).join('\n')}`);
    });
    await traffic.more(300);
    for (const n of nodes.slice(0, 3)) {
      expect(await n.relay!.proc.stop('SIGTERM')).toBe(0);
      await startNode(n);
      await ready(n);
      await Promise.all([agentOn(n, 'agent-a'), agentOn(n, 'agent-b')]);
      await traffic.more(300);
    }
    await traffic.stop();
    expect(failures(traffic.results)).toEqual([]);
  });

  it('a node added later serves traffic within 10 s', async () => {
    const added = nodes[3];
    const traffic = load('/t/t/added', 20);
    await traffic.more(100);
    const startedAt = Date.now();
    await startNode(added);
    const served = await added.relay!.proc.waitForLog((l) => l.msg === 'request' && l.status === 200, 15_000);
    expect(Date.parse(String(served.time)) - startedAt).toBeLessThan(10_000);
    await traffic.more(200);
    await traffic.stop();
    expect(failures(traffic.results)).toEqual([]);
  });
});
