/**
 * What the agent's admin listener shows (src/admin/server.ts): readiness
 * (connected, with every tunnel accepted), the status as JSON and as a
 * page (relay connections, tunnels and their targets, recent target
 * failures), and the metrics.
 */
import type { AdminRoutes, Readiness, ReloadResult } from '../src/admin/server.js';
import { processStatus, statusPage, statusRoutes, type ProcessStatus } from '../src/admin/status-routes.js';
import type { InspectEntry } from '../src/inspect/entry.js';
import { ago, bytes, expiryText, expiryTone, table } from '../src/admin/page.js';
import type { AgentConfig } from '../src/config/index.js';
import { redactUrl } from '../src/redact.js';
import type { AgentMetrics } from './metrics.js';
import type { RelayConnectionStatus } from './relay-status.js';
import type { RecentFailure, TunnelCounts } from './tunnel-requests.js';

export interface AgentStatusTunnel {
  name: string;
  target: string;
  publicUrl: string | undefined;
  requests: number;
  failures: number;
  open: number;
}

export interface AgentStatus extends ProcessStatus {
  role: 'agent';
  agentId: string | undefined;
  tokenId: string | undefined;
  tokenExpiresAt: string | undefined;
  relays: RelayConnectionStatus[];
  tunnels: AgentStatusTunnel[];
  recentFailures: RecentFailure[];
}

export interface AgentAdminDeps {
  started: Date;
  config(): AgentConfig;
  token(): { agentId: string | undefined; tokenId: string | undefined; expiresAt: Date | undefined };
  relays(): RelayConnectionStatus[];
  publicUrls(): Record<string, string>;
  counts(): ReadonlyMap<string, TunnelCounts>;
  recentFailures(): readonly RecentFailure[];
  metrics: AgentMetrics;
  ready(): Readiness;
  reload(): Promise<ReloadResult>;
  /** The newest exchanges the inspector kept; undefined when it is off. */
  recentExchanges?(): readonly InspectEntry[] | undefined;
}

export function agentStatus(d: AgentAdminDeps): AgentStatus {
  const config = d.config();
  const token = d.token();
  const counts = d.counts();
  const urls = d.publicUrls();
  return {
    role: 'agent',
    ...processStatus(config.file, d.started, d.ready()),
    agentId: token.agentId,
    tokenId: token.tokenId,
    tokenExpiresAt: token.expiresAt?.toISOString(),
    relays: d.relays(),
    tunnels: Object.values(config.tunnels).map((t) => ({
      name: t.name,
      target: redactUrl(t.target),
      publicUrl: urls[t.name],
      requests: counts.get(t.name)?.requests ?? 0,
      failures: counts.get(t.name)?.failures ?? 0,
      open: counts.get(t.name)?.open ?? 0,
    })),
    recentFailures: [...d.recentFailures()],
  };
}

function agentPage(s: AgentStatus, recent: readonly InspectEntry[] | undefined): string {
  const now = new Date();
  const up = s.relays.filter((r) => r.state === 'connected').length;
  return statusPage('agent', `ctbridge agent ${s.agentId ?? ''}`.trim(), s, [
    ['agent id', s.agentId ?? 'unknown: the token cannot be read'],
    ['token', s.tokenId ? `${s.tokenId}, expires ${expiryText(s.tokenExpiresAt, now)}` : expiryText(s.tokenExpiresAt, now), expiryTone(s.tokenExpiresAt, now)],
    ['relay connections', `${up} of ${s.relays.length} connected`, up === 0 ? 'bad' : up < s.relays.length ? 'warn' : undefined],
  ], [
    ['Relay connections', table(s.relays, [
      { title: 'relay', cell: (r) => r.relay },
      { title: 'state', cell: (r) => r.state, tone: (r) => (r.state === 'connected' ? 'good' : r.state === 'stopped' ? 'warn' : 'bad') },
      { title: 'connected', cell: (r) => (r.connectedSince ? `${ago(new Date(r.connectedSince), now)} ago` : '') },
      { title: 'connection id', cell: (r) => r.connectionId },
      { title: 'open', cell: (r) => r.openExchanges, numeric: true },
      { title: 'in', cell: (r) => bytes(r.bytesIn), numeric: true, hint: 'bytes received from the relay on this connection (requests, control frames)' },
      { title: 'out', cell: (r) => bytes(r.bytesOut), numeric: true, hint: 'bytes sent to the relay on this connection (responses, control frames)' },
      { title: 'reconnects', cell: (r) => r.reconnects, numeric: true },
      { title: 'last problem', cell: (r) => (r.lastProblem ? `${r.lastProblem.message} (${ago(new Date(r.lastProblem.at), now)} ago)` : '') },
    ], 'No relay is configured.')],
    ['Tunnels', table(s.tunnels, [
      { title: 'tunnel', cell: (t) => t.name },
      { title: 'target', cell: (t) => t.target },
      { title: 'public URL', cell: (t) => t.publicUrl ?? 'not connected yet' },
      { title: 'requests', cell: (t) => t.requests, numeric: true },
      { title: 'failed', cell: (t) => t.failures, numeric: true, tone: (t) => (t.failures > 0 ? 'warn' : undefined) },
      { title: 'open', cell: (t) => t.open, numeric: true },
    ], 'No tunnel is configured.')],
    [s.recentFailures.length ? `Recent target failures (${s.recentFailures.length}, newest first)` : 'Recent target failures', table(s.recentFailures, [
      { title: 'when', cell: (f) => `${ago(new Date(f.at), now)} ago` },
      { title: 'tunnel', cell: (f) => f.tunnel },
      { title: 'code', cell: (f) => f.code },
      { title: 'what happened', cell: (f) => f.message },
    ], 'None since the agent started.')],
  ], recent, now);
}

export function agentAdminRoutes(d: AgentAdminDeps): AdminRoutes {
  return statusRoutes({
    ready: d.ready,
    reload: d.reload,
    status: () => agentStatus(d),
    page: (s) => agentPage(s, d.recentExchanges?.()),
    metrics: d.metrics.registry,
    admin: () => d.config().admin,
  });
}
