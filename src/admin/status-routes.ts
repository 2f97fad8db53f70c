/**
 * What the agent's and the relay's admin listeners show alike
 * (agent/admin.ts, relay/admin.ts): the facts every process has (software,
 * config file, uptime, readiness), the status page around each role's own
 * facts and sections, and the routes (src/admin/server.ts) built from a
 * role's status.
 */
import { resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { AdminConfig } from '../config/common.js';
import type { InspectEntry } from '../inspect/entry.js';
import { SOFTWARE_VERSION } from '../protocol.js';
import { recentExchangesSection } from './exchanges-page.js';
import { ago, facts, page } from './page.js';
import type { AdminRoutes, Readiness, ReloadResult } from './server.js';

/** The part of GET /api/status both roles have. */
export interface ProcessStatus {
  software: string;
  config: string;
  startedAt: string;
  uptimeSeconds: number;
  ready: boolean;
  readiness: string;
}

export function processStatus(configFile: string, started: Date, r: Readiness): ProcessStatus {
  return {
    software: SOFTWARE_VERSION,
    // Absolute: `ctbridge status --config` finds this process by it (admin.listen not set, on a fallback port).
    config: resolve(configFile),
    startedAt: started.toISOString(),
    uptimeSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    ready: r.ready,
    readiness: r.reason,
  };
}

type Fact = Parameters<typeof facts>[0][number];

/**
 * A role's status page: a first section of its own facts followed by the
 * config file, software and uptime; its own sections; last the exchanges
 * the inspector kept (`recent` undefined: it is off).
 */
export function statusPage(
  role: 'agent' | 'relay',
  title: string,
  s: ProcessStatus,
  own: readonly Fact[],
  sections: readonly [string, string][],
  recent: readonly InspectEntry[] | undefined,
  now: Date,
): string {
  return page(title, { ready: s.ready, reason: s.readiness }, [
    [role === 'agent' ? 'Agent' : 'Relay', facts([
      ...own,
      ['config', s.config],
      ['software', s.software],
      ['up', ago(new Date(s.startedAt), now)],
    ])],
    ...sections,
    ['Recent exchanges', recentExchangesSection(role, recent)],
  ]);
}

export interface StatusRoutesDeps<S> {
  ready(): Readiness;
  reload(): Promise<ReloadResult>;
  /** The status as it is now (read from the live state when asked). */
  status(): S;
  page(s: S): string;
  metrics: Pick<Registry, 'contentType' | 'metrics'>;
  /** The admin section of the config as it is now (a reload may change who may call). */
  admin(): AdminConfig;
}

export function statusRoutes<S>(d: StatusRoutesDeps<S>): AdminRoutes {
  return {
    ready: d.ready,
    status: () => d.status(),
    page: () => d.page(d.status()),
    metrics: async () => ({ contentType: d.metrics.contentType, text: await d.metrics.metrics() }),
    reload: d.reload,
    allowFrom: () => d.admin().allowFrom,
    hosts: () => d.admin().hosts,
  };
}
