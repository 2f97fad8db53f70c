/**
 * The relay's configuration as it is now, and what is built from it: the
 * token verifier and each tunnel's kind. A reload swaps all of it at once
 * (`replace`), after the new file has passed validation; every request and
 * agent handshake reads the current one, so none sees half of each.
 *
 * What a reload cannot change in a running process (the listeners' addresses,
 * TLS on or off, the agent path) is reported by `restartOnly` and keeps its
 * old value until a restart; the cluster's identity refuses the reload
 * (relay/cluster/reload.ts).
 */
import type { RelayConfig } from '../src/config/index.js';
import { createAgentTokenVerifier } from '../src/agent-auth.js';
import { formatHostPort } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import type { TokenVerifier } from '../src/token.js';
import { httpKind } from './http-kind.js';
import type { ClientTrackerMetrics } from './clienttracker/metrics.js';
import type { KindHandler } from './tunnel-kind.js';

type ClientTrackerModule = typeof import('./clienttracker/index.js');

export interface LiveConfigDeps {
  publicUrlFor(tunnel: string): string;
  log: Logger;
  metrics: ClientTrackerMetrics;
}

/** Client Tracker support (libxml2-wasm) is loaded the first time a config has a clienttracker tunnel. */
let ctModule: Promise<ClientTrackerModule> | undefined;
export function loadClientTracker(): Promise<ClientTrackerModule> {
  return (ctModule ??= import('./clienttracker/index.js'));
}

export function hasClientTracker(config: RelayConfig): boolean {
  return Object.values(config.tunnels).some((t) => t.kind === 'clienttracker');
}

export class LiveConfig {
  private constructor(
    private current: RelayConfig,
    private verifierNow: TokenVerifier,
    private kinds: ReadonlyMap<string, KindHandler>,
    private readonly deps: LiveConfigDeps,
  ) {}

  static async create(config: RelayConfig, deps: LiveConfigDeps): Promise<LiveConfig> {
    return new LiveConfig(config, createAgentTokenVerifier(config), await kindsOf(config, deps), deps);
  }

  get config(): RelayConfig {
    return this.current;
  }

  get verifier(): TokenVerifier {
    return this.verifierNow;
  }

  /** The tunnel's kind: `clienttracker` tunnels have their own, everything else is plain HTTP. */
  kindOf(tunnel: string): KindHandler {
    return this.kinds.get(tunnel) ?? httpKind;
  }

  /** Builds everything from `next` first, then swaps it in at once. */
  async replace(next: RelayConfig): Promise<void> {
    const kinds = await kindsOf(next, this.deps);
    const verifier = createAgentTokenVerifier(next);
    this.current = next;
    this.verifierNow = verifier;
    this.kinds = kinds;
  }

  /** Keys of `next` whose change needs a restart, with what they stay at. */
  restartOnly(next: RelayConfig): string[] {
    const now = this.current;
    const out: string[] = [];
    const hp = (v: { host: string; port: number } | undefined): string => (v ? formatHostPort(v) : 'off');
    if (hp(now.listen) !== hp(next.listen)) out.push(`listen (stays ${hp(now.listen)})`);
    if (hp(now.admin.listen) !== hp(next.admin.listen)) out.push(`admin.listen (stays ${hp(now.admin.listen)})`);
    if (!!now.tls !== !!next.tls) out.push(`tls (stays ${now.tls ? 'on' : 'off'})`);
    if (now.agentPath !== next.agentPath) out.push(`agentPath (stays ${now.agentPath})`);
    return out;
  }
}

async function kindsOf(config: RelayConfig, deps: LiveConfigDeps): Promise<ReadonlyMap<string, KindHandler>> {
  if (!hasClientTracker(config)) return new Map();
  const ct = await loadClientTracker();
  return ct.createKindHandlers(config, deps);
}
