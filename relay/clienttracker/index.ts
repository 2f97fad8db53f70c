/**
 * The `clienttracker` tunnel kind: the relay as a Client Tracker bridge.
 *
 * Wiring (relay/index.ts):
 *   createKindHandlers(config, { publicUrlFor, log }) → the kind of each clienttracker tunnel (PublicRequests)
 *   createEgressHandler(config, log) → agents' egress exchanges (AgentEndpoint)
 */
import type { RelayConfig } from '../../src/config/index.js';
import type { Logger } from '../../src/log.js';
import type { KindHandler } from '../tunnel-kind.js';
import { createClientTrackerHandler } from './kind-handler.js';
import type { ClientTrackerMetrics } from './metrics.js';

export { createClientTrackerHandler, DEFAULT_MAX_ANSWER, type ClientTrackerHandlerOptions } from './kind-handler.js';
export { createEgressHandler, type EgressHandler, type EgressOptions } from './egress.js';
export { errorText, type ErrorTextParams } from './error-text.js';
export { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';
export { processAnswer, type AnswerOutcome, type Finding } from './answer.js';

/** One handler per `kind: clienttracker` tunnel of relay.yaml, by tunnel name. */
export function createKindHandlers(
  config: RelayConfig,
  opts: { publicUrlFor(tunnel: string): string; log: Logger; metrics?: ClientTrackerMetrics },
): ReadonlyMap<string, KindHandler> {
  const handlers = new Map<string, KindHandler>();
  for (const tunnel of Object.values(config.tunnels)) {
    if (tunnel.kind !== 'clienttracker') continue;
    const handlerOpts = {
      publicUrlFor: opts.publicUrlFor,
      // opts.log is the request log (component: requests): a second `component` would repeat the key in every line.
      log: opts.log.child({ tunnelKind: 'clienttracker' }),
      maxResponseBody: config.limits.maxResponseBody,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    };
    handlers.set(tunnel.name, createClientTrackerHandler(tunnel, handlerOpts));
  }
  return handlers;
}
