/**
 * Prometheus metrics of the agent, served on its admin listener's GET
 * /metrics. Labels are only tunnel names from agent.yaml, relay URLs from
 * agent.yaml, status codes and ctbridge error codes: a bounded set.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DURATION_BUCKETS, codeLabel } from '../src/metrics.js';

export interface AgentMetricsSource {
  /** Relay connections that are up, by relay URL (redacted). */
  relays(): { relay: string; connected: boolean; openExchanges: number; reconnects: number }[];
  /** Seconds until the agent's token expires (negative once it has). */
  tokenSecondsLeft(): number | undefined;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'tunnel' | 'status'>;
  private readonly errors: Counter<'tunnel' | 'code'>;
  private readonly latency: Histogram<'tunnel'>;
  private readonly bytes: Counter<'tunnel' | 'direction'>;

  constructor(source: AgentMetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'ctbridge_agent_' });
    new Gauge({
      name: 'ctbridge_agent_relay_connected',
      help: 'Whether the connection to each relay is up and accepted (1) or not (0).',
      labelNames: ['relay'],
      registers,
      collect() {
        this.reset();
        for (const r of source.relays()) this.set({ relay: r.relay }, r.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ctbridge_agent_exchanges_open',
      help: 'Exchanges open on the relay connections (requests in flight and WebSocket connections).',
      registers,
      collect() {
        this.set(source.relays().reduce((n, r) => n + r.openExchanges, 0));
      },
    });
    new Gauge({
      name: 'ctbridge_agent_token_expiry_seconds',
      help: "Seconds until the agent's token expires; alert well before 0 (a new token and a reload, no restart).",
      registers,
      collect() {
        const left = source.tokenSecondsLeft();
        if (left !== undefined) this.set(left);
      },
    });
    new Counter({
      name: 'ctbridge_agent_reconnects_total',
      help: 'Connections to a relay lost after they had been accepted (each is followed by a reconnect).',
      labelNames: ['relay'],
      registers,
      collect() {
        this.reset();
        for (const r of source.relays()) this.inc({ relay: r.relay }, r.reconnects);
      },
    });
    this.requests = new Counter({ name: 'ctbridge_agent_requests_total', help: 'Requests the agent sent to its targets, by tunnel and the status returned.', labelNames: ['tunnel', 'status'], registers });
    this.errors = new Counter({ name: 'ctbridge_agent_errors_total', help: 'Requests that failed at the agent, by tunnel and error code.', labelNames: ['tunnel', 'code'], registers });
    this.bytes = new Counter({
      name: 'ctbridge_agent_tunnel_bytes_total',
      help: 'Body bytes through each tunnel: direction "in" is request bodies (from the relay to the target), "out" is response bodies (from the target to the relay).',
      labelNames: ['tunnel', 'direction'],
      registers,
    });
    this.latency = new Histogram({
      name: 'ctbridge_agent_target_duration_seconds',
      help: 'Time from the exchange arriving to its end, by tunnel (target latency plus the transfer).',
      labelNames: ['tunnel'],
      buckets: [...DURATION_BUCKETS],
      registers,
    });
  }

  /** One finished exchange of a tunnel in agent.yaml (tunnel-requests.ts refuses others before they count). */
  request(tunnel: string, status: number, seconds: number, code: string | undefined, bytes: { in: number; out: number } = { in: 0, out: 0 }): void {
    this.requests.inc({ tunnel, status: String(status) });
    this.latency.observe({ tunnel }, seconds);
    if (bytes.in) this.bytes.inc({ tunnel, direction: 'in' }, bytes.in);
    if (bytes.out) this.bytes.inc({ tunnel, direction: 'out' }, bytes.out);
    if (code) this.errors.inc({ tunnel, code: codeLabel(code) });
  }
}
