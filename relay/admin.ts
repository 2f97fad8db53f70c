/**
 * What the relay's admin listener shows (src/admin/server.ts): readiness,
 * the status as JSON (what `ctbridge status` prints) and as a page, and
 * the Prometheus metrics. Everything here is read from the live state when
 * asked; nothing is kept for it.
 */
import type { AdminRoutes, Readiness, ReloadResult } from '../src/admin/server.js';
import { processStatus, statusPage, statusRoutes, type ProcessStatus } from '../src/admin/status-routes.js';
import type { InspectEntry } from '../src/inspect/entry.js';
import { ago, bytes, expiryText, expiryTone, table } from '../src/admin/page.js';
import { formatHostPort } from '../src/config/index.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';
import type { ClusterStatus } from './cluster/index.js';
import type { LiveConfig } from './live-config.js';
import type { RelayMetrics } from './metrics.js';

export interface RelayStatusAgent {
  connectionId: string;
  agentId: string;
  tunnels: readonly string[];
  remoteAddress: string;
  since: string | undefined;
  software: string | undefined;
  hostname: string | undefined;
  openExchanges: number;
  bytesIn: number;
  bytesOut: number;
  tokenId: string | undefined;
  keyId: string | undefined;
  tokenExpiresAt: string | undefined;
  draining: boolean;
}

export interface RelayStatusTunnel {
  name: string;
  kind: string;
  /** Listed in relay.yaml (others exist because an agent for them connected). */
  configured: boolean;
  agents: number;
  /** `not served`: not in relay.yaml while requireDeclaredTunnels is on. */
  state: 'serving' | 'no agent' | 'draining' | 'not served';
}

export interface RelayStatus extends ProcessStatus {
  role: 'relay';
  listen: string;
  publicUrl: string;
  agents: RelayStatusAgent[];
  tunnels: RelayStatusTunnel[];
  /** In a cluster: this node and its peers. */
  cluster?: ClusterStatus;
}

export interface RelayAdminDeps {
  started: Date;
  live: LiveConfig;
  registry: AgentRegistry;
  metrics: RelayMetrics;
  address: { host: string; port: number };
  publicUrl(): string;
  ready(): Readiness;
  reload(): Promise<ReloadResult>;
  cluster?(): ClusterStatus | undefined;
  /** The newest exchanges the inspector kept; undefined when it is off. */
  recentExchanges?(): readonly InspectEntry[] | undefined;
}

function agentStatus(a: ConnectedAgent): RelayStatusAgent {
  return {
    connectionId: a.connectionId,
    agentId: a.agentId,
    tunnels: a.tunnels,
    remoteAddress: a.remoteAddress,
    since: a.since?.toISOString(),
    software: a.software,
    hostname: a.hostname,
    openExchanges: a.session.exchangeCount,
    bytesIn: a.session.bytesIn,
    bytesOut: a.session.bytesOut,
    tokenId: a.claims?.tokenId,
    keyId: a.claims?.keyId,
    tokenExpiresAt: a.claims?.expiresAt.toISOString(),
    draining: a.draining,
  };
}

export function relayStatus(d: RelayAdminDeps): RelayStatus {
  const config = d.live.config;
  const agents = d.registry.all();
  const names = new Set([...Object.keys(config.tunnels), ...agents.flatMap((a) => a.tunnels)]);
  const tunnels = [...names].sort().map((name): RelayStatusTunnel => {
    const serving = d.registry.agentsOf(name);
    const up = serving.filter((a) => !a.draining).length;
    return {
      name,
      kind: Object.hasOwn(config.tunnels, name) ? config.tunnels[name].kind : 'http',
      configured: Object.hasOwn(config.tunnels, name),
      agents: serving.length,
      state: config.requireDeclaredTunnels && !Object.hasOwn(config.tunnels, name) ? 'not served' : up > 0 ? 'serving' : serving.length > 0 ? 'draining' : 'no agent',
    };
  });
  return {
    role: 'relay',
    ...processStatus(config.file, d.started, d.ready()),
    listen: formatHostPort(d.address),
    publicUrl: d.publicUrl(),
    agents: agents.map(agentStatus),
    tunnels,
    cluster: d.cluster?.(),
  };
}

function relayPage(s: RelayStatus, recent: readonly InspectEntry[] | undefined): string {
  const now = new Date();
  const idle = s.tunnels.filter((t) => t.state !== 'serving').map((t) => t.name);
  return statusPage('relay', `ctbridge relay ${s.listen}`, s, [
    ['public URL', s.publicUrl],
    ['agents connected', s.agents.length],
    ['tunnels', `${s.tunnels.length}${idle.length ? `; without an agent: ${idle.join(', ')}` : ''}`],
  ], [
    ['Tunnels', table(s.tunnels, [
      { title: 'tunnel', cell: (t) => t.name },
      { title: 'kind', cell: (t) => t.kind },
      { title: 'state', cell: (t) => t.state, tone: (t) => (t.state === 'serving' ? 'good' : t.state === 'draining' ? 'warn' : 'bad') },
      { title: 'agents', cell: (t) => t.agents, numeric: true },
      { title: 'served by', cell: (t) => [...new Set(s.agents.filter((a) => a.tunnels.includes(t.name)).map((a) => a.agentId))].join(', ') },
      { title: 'in relay.yaml', cell: (t) => (t.configured ? 'yes' : t.state === 'not served' ? 'no: not served (requireDeclaredTunnels)' : 'no (named in an agent token)') },
    ], 'No tunnel is configured and no agent is connected.')],
    ...(s.cluster ? [[`Cluster: node ${s.cluster.nodeId}`, table(s.cluster.peers, [
      { title: 'peer node', cell: (p) => p.nodeId ?? '?' },
      { title: 'address', cell: (p) => p.address },
      { title: 'state', cell: (p) => p.state },
      { title: 'tunnels served there', cell: (p) => p.tunnels.join(', ') },
      { title: 'last problem', cell: (p) => p.lastProblem },
    ], 'No other node is known yet.')] as [string, string]] : []),
    [`Connected agents (${s.agents.length})`, table(s.agents, [
      { title: 'agent', cell: (a) => a.agentId },
      { title: 'host', cell: (a) => a.hostname },
      { title: 'tunnels', cell: (a) => a.tunnels.join(', ') },
      { title: 'from', cell: (a) => a.remoteAddress },
      { title: 'connected', cell: (a) => (a.since ? `${ago(new Date(a.since), now)} ago` : '') },
      { title: 'software', cell: (a) => a.software },
      { title: 'open', cell: (a) => a.openExchanges, numeric: true },
      { title: 'in', cell: (a) => bytes(a.bytesIn), numeric: true, hint: 'bytes received from the agent on this connection (responses, control frames)' },
      { title: 'out', cell: (a) => bytes(a.bytesOut), numeric: true, hint: 'bytes sent to the agent on this connection (requests, control frames)' },
      { title: 'token expires', cell: (a) => expiryText(a.tokenExpiresAt, now), tone: (a) => expiryTone(a.tokenExpiresAt, now) },
      { title: 'state', cell: (a) => (a.draining ? 'leaving' : 'serving'), tone: (a) => (a.draining ? 'warn' : 'good') },
    ], 'No agent is connected.')],
  ], recent, now);
}

export function relayAdminRoutes(d: RelayAdminDeps): AdminRoutes {
  return statusRoutes({
    ready: d.ready,
    reload: d.reload,
    status: () => relayStatus(d),
    page: (s) => relayPage(s, d.recentExchanges?.()),
    metrics: d.metrics.registry,
    admin: () => d.live.config.admin,
  });
}
