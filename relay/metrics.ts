/**
 * Prometheus metrics of the relay, served on the admin listener's GET /metrics.
 * Labels never hold a secret or a caller-chosen string: tunnel names are only
 * those the relay knows (configured or served), statuses and codes are ours.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentRegistry } from './agent-registry.js';
import { CT_METRICS, type ClientTrackerMetrics } from './clienttracker/metrics.js';

export class RelayMetrics implements ClientTrackerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'tunnel' | 'status'>;
  private readonly duration: Histogram<'tunnel'>;
  private readonly ct = new Map<string, Counter<string>>();

  constructor(registry: AgentRegistry) {
    const countAgents = (): number => registry.all().length;
    const countStreams = (): number => registry.all().reduce((n, a) => n + a.session.exchangeCount, 0);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'ctbridge_relay_' });
    this.requests = new Counter({ name: 'ctbridge_requests_total', help: 'Requests through the relay by tunnel and HTTP status.', labelNames: ['tunnel', 'status'], registers });
    this.duration = new Histogram({
      name: 'ctbridge_request_duration_seconds',
      help: 'Time from request arrival to the end of the response, by tunnel.',
      labelNames: ['tunnel'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120],
      registers,
    });
    new Gauge({ name: 'ctbridge_agents_connected', help: 'Agent connections that completed the handshake.', registers, collect() { this.set(countAgents()); } });
    new Gauge({ name: 'ctbridge_streams_open', help: 'Tunnel streams open across all agents.', registers, collect() { this.set(countStreams()); } });
    const ctCounter = (name: string, help: string, labelNames: string[]): void => {
      this.ct.set(name, new Counter({ name, help, labelNames, registers }));
    };
    ctCounter(CT_METRICS.answerProblems, 'Provider answers with a problem (not XML, schema violation, DOCTYPE, namespace quirk).', ['tunnel', 'reason', 'mode']);
    ctCounter(CT_METRICS.errors, 'Bridge errors shown to Client Tracker as XML.', ['tunnel', 'code']);
    ctCounter(CT_METRICS.rewrites, 'Registrations whose URLs were rewritten.', ['tunnel']);
    ctCounter(CT_METRICS.egress, 'Provider to Client Tracker messages through the relay.', ['tunnel', 'message', 'status']);
  }

  /** One finished request; `tunnel` is '' when the relay refused it before knowing a tunnel. */
  request(tunnel: string, status: number, seconds: number): void {
    this.requests.inc({ tunnel, status: String(status) });
    this.duration.observe({ tunnel }, seconds);
  }

  increment(name: string, labels: Record<string, string>): void {
    this.ct.get(name)?.inc(labels);
  }
}
