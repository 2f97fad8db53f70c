/**
 * The `clienttracker` tunnel kind: the relay as a Client Tracker bridge.
 *
 * Wiring (relay/index.ts):
 *   kindHandler: createKindHandlerLookup(config, { publicUrlFor, log }) → RequestHandler
 *   onAgentStream: createEgressHandler(config, log) → AgentEndpoint
 */
import type { RelayConfig } from '../../src/config/index.js';
import type { Logger } from '../../src/log.js';
import type { KindHandler, KindHandlerLookup } from '../tunnel-kind.js';
import { createClientTrackerHandler } from './kind-handler.js';
import type { ClientTrackerMetrics } from './metrics.js';

export { createClientTrackerHandler, DEFAULT_MAX_ANSWER, type ClientTrackerHandlerOptions } from './kind-handler.js';
export { createEgressHandler, EGRESS_MESSAGES, MAX_EGRESS_BODY, type EgressHandler, type EgressOptions } from './egress.js';
export { errorText, egressErrorText, type ErrorTextParams } from './error-text.js';
export { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';
export { processAnswer, type AnswerOutcome, type Finding } from './answer.js';

/**
 * One handler per `kind: clienttracker` tunnel of relay.yaml, looked up by
 * tunnel name; other tunnels get undefined (plain HTTP).
 */
export function createKindHandlerLookup(
  config: RelayConfig,
  opts: { publicUrlFor(tunnel: string): string; log: Logger; metrics?: ClientTrackerMetrics },
): KindHandlerLookup {
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
  return (tunnel) => handlers.get(tunnel);
}
