/**
 * Prometheus metrics of the relay, served on the admin listener's GET /metrics.
 * Labels never hold a secret or a caller-chosen string: tunnel names are only
 * those the relay knows (relay.yaml, or served by an agent whose token names
 * them), agent ids come from verified tokens, statuses and error codes are
 * ours. A path never becomes a label.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DURATION_BUCKETS, codeLabel } from '../src/metrics.js';
import type { AgentRegistry } from './agent-registry.js';
import { CT_METRICS, type ClientTrackerMetrics } from './clienttracker/metrics.js';
import type { ResendReason } from './resend.js';

/** What a finished request adds besides its status and duration. */
export interface RequestTotals {
  /** Request body bytes the caller sent (toward the target). */
  bytesIn?: number;
  /** Response body bytes the caller got (from the target). */
  bytesOut?: number;
  /** The ctbridge error code the relay answered or logged, if any. */
  code?: string | undefined;
}

export class RelayMetrics implements ClientTrackerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'tunnel' | 'status'>;
  private readonly duration: Histogram<'tunnel'>;
  private readonly bytes: Counter<'tunnel' | 'direction'>;
  private readonly errors: Counter<'tunnel' | 'code'>;
  private readonly resends: Counter<'reason'>;
  private readonly ct = new Map<string, Counter<string>>();
  /** Tunnels that had an agent at some scrape or a request: reported (at 0) after their agents leave. */
  private readonly served = new Set<string>();

  /**
   * `tunnels`: relay.yaml's tunnels as they are now (a reload changes them).
   * A tunnel becomes a label value only if it is there or an agent serves it.
   */
  constructor(
    private readonly agents: AgentRegistry,
    private readonly tunnels: () => Readonly<Record<string, unknown>> = () => ({}),
  ) {
    const registers = [this.registry];
    const all = () => agents.all();
    const served = this.served;
    const tunnelNames = (): string[] => {
      for (const a of all()) for (const t of a.tunnels) served.add(t);
      return [...new Set([...Object.keys(tunnels()), ...served])].sort();
    };
    collectDefaultMetrics({ register: this.registry, prefix: 'ctbridge_relay_' });
    this.requests = new Counter({ name: 'ctbridge_requests_total', help: 'Requests through the relay by tunnel and HTTP status (tunnel "" when the URL named no tunnel the relay knows).', labelNames: ['tunnel', 'status'], registers });
    this.duration = new Histogram({
      name: 'ctbridge_request_duration_seconds',
      help: 'Time from request arrival to the end of the response, by tunnel.',
      labelNames: ['tunnel'],
      buckets: [...DURATION_BUCKETS],
      registers,
    });
    this.bytes = new Counter({
      name: 'ctbridge_tunnel_bytes_total',
      help: 'Body bytes through each tunnel: direction "in" is request bodies (caller to target), "out" is response bodies (target to caller).',
      labelNames: ['tunnel', 'direction'],
      registers,
    });
    this.errors = new Counter({
      name: 'ctbridge_errors_total',
      help: 'Answers and cut responses the relay gave with a ctbridge error code, by tunnel ("" when unknown) and code (docs/errors.md, "Error codes").',
      labelNames: ['tunnel', 'code'],
      registers,
    });
    this.resends = new Counter({
      name: 'ctbridge_requests_resent_total',
      help: 'Requests sent again to another agent or relay node after their exchange died before the agent answered (docs/errors.md, "Which requests the relay re-sends"), by reason: "agent_disconnected" (the link dropped), "node_turned_away" (another node had no agent for the tunnel any more).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['agent_disconnected', 'node_turned_away']) this.resends.inc({ reason }, 0);
    new Gauge({ name: 'ctbridge_agents_connected', help: 'Agent connections that completed the handshake.', registers, collect() { this.set(all().length); } });
    new Gauge({
      name: 'ctbridge_exchanges_open',
      help: 'Exchanges open across all agent connections (requests in flight, WebSocket connections, egress messages).',
      registers,
      collect() {
        this.set(all().reduce((n, a) => n + a.session.exchangeCount, 0));
      },
    });
    new Gauge({
      name: 'ctbridge_tunnel_agents',
      help: 'Agent connections serving each tunnel: the tunnels of relay.yaml and those an agent served since the relay started. Alert when one stays at 0.',
      labelNames: ['tunnel'],
      registers,
      collect() {
        this.reset();
        for (const t of tunnelNames()) this.set({ tunnel: t }, agents.agentsOf(t).length);
      },
    });
    new Gauge({
      name: 'ctbridge_agent_token_expiry_seconds',
      help: "Seconds until each connected agent's token expires (the soonest of its connections), by agent id. Alert well before 0.",
      labelNames: ['agent'],
      registers,
      collect() {
        this.reset();
        const soonest = new Map<string, number>();
        for (const a of all()) {
          if (!a.claims) continue;
          const at = a.claims.expiresAt.getTime();
          soonest.set(a.agentId, Math.min(soonest.get(a.agentId) ?? Infinity, at));
        }
        const now = Date.now();
        for (const [agent, at] of soonest) this.set({ agent }, Math.round((at - now) / 1000));
      },
    });
    const ctCounter = (name: string, help: string, labelNames: string[]): void => {
      this.ct.set(name, new Counter({ name, help, labelNames, registers }));
    };
    ctCounter(CT_METRICS.answerProblems, 'Provider answers with a problem (not XML, schema violation, DOCTYPE, namespace quirk).', ['tunnel', 'reason', 'mode']);
    ctCounter(CT_METRICS.errors, 'Bridge errors shown to Client Tracker as XML.', ['tunnel', 'code']);
    ctCounter(CT_METRICS.rewrites, 'Registrations whose URLs were rewritten.', ['tunnel']);
    ctCounter(CT_METRICS.egress, 'Provider to Client Tracker messages through the relay.', ['tunnel', 'message', 'status']);
  }

  /** A cluster's view, once it exists (relay/cluster): peers up, and exchanges forwarded each way. */
  watchCluster(cluster: { peerCount(): { known: number; connected: number }; readonly forwarded: { sent: number; received: number } }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'ctbridge_cluster_peers',
      help: 'Other relay nodes this node knows (state "known") and is linked to (state "connected"). Alert when connected stays below known.',
      labelNames: ['state'],
      registers,
      collect() {
        const { known, connected } = cluster.peerCount();
        this.set({ state: 'known' }, known);
        this.set({ state: 'connected' }, connected);
      },
    });
    new Counter({
      name: 'ctbridge_cluster_exchanges_total',
      help: 'Exchanges forwarded between relay nodes: "sent" to a node with an agent for the tunnel, "received" from a node without one.',
      labelNames: ['direction'],
      registers,
      collect() {
        this.reset();
        this.inc({ direction: 'sent' }, cluster.forwarded.sent);
        this.inc({ direction: 'received' }, cluster.forwarded.received);
      },
    });
  }

  /** `tunnel` if the relay knows it (relay.yaml, or an agent served it since start), else "". */
  private known(tunnel: string): string {
    if (!tunnel) return '';
    if (this.served.has(tunnel) || Object.hasOwn(this.tunnels(), tunnel)) return tunnel;
    if (this.agents.hasSeen(tunnel)) {
      this.served.add(tunnel);
      return tunnel;
    }
    return '';
  }

  /**
   * One finished request; `tunnel` is '' when the relay refused it before
   * knowing a tunnel (a name it does not know is also recorded as '').
   */
  request(tunnel: string, status: number, seconds: number, totals: RequestTotals = {}): void {
    const t = this.known(tunnel);
    this.requests.inc({ tunnel: t, status: String(status) });
    this.duration.observe({ tunnel: t }, seconds);
    if (t) {
      if (totals.bytesIn) this.bytes.inc({ tunnel: t, direction: 'in' }, totals.bytesIn);
      if (totals.bytesOut) this.bytes.inc({ tunnel: t, direction: 'out' }, totals.bytesOut);
    }
    if (totals.code) this.errors.inc({ tunnel: t, code: codeLabel(totals.code) });
  }

  /** A request sent again to another agent or node (relay/resend.ts). */
  resent(reason: ResendReason): void {
    this.resends.inc({ reason });
  }

  increment(name: string, labels: Record<string, string>): void {
    this.ct.get(name)?.inc(labels);
  }
}
