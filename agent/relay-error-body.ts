/**
 * The reason in a relay's refusal: a ctbridge relay answers a refused
 * WebSocket upgrade with a JSON error body (src/http/error-response.ts):
 * the code, one plain sentence and a request id, under which the relay's
 * log line says why. The agent reads a little of it for its log line, and
 * `ctbridge agent verify --connect` for its report.
 */
import { isErrorCode } from '../src/errors.js';
import type { RefusalBody } from '../src/http/error-response.js';
import type { RelayProblem } from './relay-problem.js';

export { readErrorReason, type RefusalBody } from '../src/http/error-response.js';

/**
 * Adds the relay's own words to a problem: its sentence as `reason`, its
 * request id (the relay operator finds the why under it), and its code when
 * it is a ctbridge code (a 503 is CTB_RELAY_BUSY or CTB_SHUTTING_DOWN, not a
 * protocol problem).
 */
export function withRefusal(p: RelayProblem, refusal: RefusalBody | undefined): RelayProblem {
  if (!refusal) return p;
  if (refusal.message) p.fields.reason = refusal.message;
  if (refusal.requestId) p.fields.requestId = refusal.requestId;
  if (refusal.code && isErrorCode(refusal.code)) p.fields.code = refusal.code;
  // A relay node that is busy admitting agents or shutting down turns the connection away for now: nothing is wrong here.
  if (refusal.code === 'CTB_RELAY_BUSY' || refusal.code === 'CTB_SHUTTING_DOWN') {
    p.level = 'warn';
    p.msg = 'relay turned the connection away for now';
    p.fields.hint = 'nothing to do: the agent connects again after the Retry-After delay (through a load balancer, most likely to another relay node)';
  }
  return p;
}

