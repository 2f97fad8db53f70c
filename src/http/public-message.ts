/**
 * What a public caller reads when the bridge itself fails: one plain
 * sentence per error code, from the code and the numbers in its params
 * (seconds, bytes), never from the error's message. Messages name intranet
 * targets, agent ids, relay nodes and config keys ("could not connect to
 * http://10.1.2.3:8080 for tunnel 'ucws'", "agent 'acme-1' is revoked in
 * auth.revoked.agents"); those go to the log line with the request id, and
 * a caller quotes that id to the operator. docs/errors.md shows both.
 *
 * The Record type makes the compiler check that every code has a sentence.
 */
import type { CtbridgeError, ErrorCode, ErrorParams } from '../errors.js';

function within(p: ErrorParams): string {
  if (p.seconds === undefined) return 'in time';
  const s = Math.round(p.seconds * 10) / 10;
  return `within ${s} second${s === 1 ? '' : 's'}`;
}

const limit = (p: ErrorParams): string => (p.bytes === undefined ? '' : ` (${p.bytes} bytes)`);

/** A caller-side problem description (bad encoding, a schema finding) with its end punctuation dropped. */
const problem = (p: ErrorParams): string => (p.problem ? `: ${p.problem.replace(/[.\s]+$/, '')}` : '');

const ASK = 'if it keeps happening, give the request id to the operator';

const TEXT: Record<ErrorCode, (p: ErrorParams) => string> = {
  CTB_CONFIG_INVALID: () => `The bridge is misconfigured; give the request id to the operator.`,
  CTB_TOKEN_INVALID: () => 'The relay refused the on-premise agent for this tunnel; give the request id to the operator.',
  CTB_TUNNEL_NOT_ALLOWED: () => 'The on-premise agent is not allowed to serve this tunnel; give the request id to the operator.',
  CTB_TUNNEL_UNKNOWN: () => 'No tunnel of that name exists on this relay; check the tunnel name in the URL (/t/<tunnel>/<path>).',
  CTB_PATH_NOT_ALLOWED: () => 'This tunnel does not open this path.',
  CTB_SOURCE_NOT_ALLOWED: () => 'This tunnel does not accept calls from your address.',
  CTB_AGENT_NOT_CONNECTED: () => `The on-premise agent for this tunnel is not connected to the relay; try again later, and ${ASK}.`,
  CTB_AGENT_DISCONNECTED: () => `The connection to the on-premise agent dropped before the answer arrived; try again, and ${ASK}.`,
  CTB_AGENT_BUSY: () => 'The on-premise agent for this tunnel is handling too many requests; retry after the Retry-After delay.',
  CTB_TARGET_UNREACHABLE: () => `The on-premise agent could not reach the service behind this tunnel; ${ASK}.`,
  CTB_TARGET_TIMEOUT: (p) => `The service behind this tunnel did not answer ${within(p)}; try again, and ${ASK}.`,
  CTB_TARGET_BAD_RESPONSE: () => `The service behind this tunnel sent an answer that is not valid HTTP; ${ASK}.`,
  CTB_REQUEST_TIMEOUT: (p) => `The request did not complete ${within(p)}; try again, and ${ASK}.`,
  CTB_BODY_TOO_LARGE: (p) =>
    p.body === 'answer'
      ? `The answer is larger than the relay passes on${limit(p)}.`
      : `The request body is larger than this tunnel accepts${limit(p)}; it was not sent.`,
  CTB_BAD_REQUEST: (p) => `The request is malformed${problem(p)}.`,
  CTB_XML_INVALID: (p) => `The XML message does not follow the Client Tracker schema${problem(p)}.`,
  CTB_UPSTREAM_INVALID: () => `The service behind this tunnel answered something that is not Client Tracker XML; ${ASK}.`,
  CTB_CT_UNREACHABLE: () => `The relay could not reach Client Tracker; try again later, and ${ASK}.`,
  CTB_SHUTTING_DOWN: () => 'The bridge is restarting; retry after the Retry-After delay.',
  CTB_CANCELLED: () => 'The request was cancelled before it completed; try again.',
  CTB_PROTOCOL: () => `The relay and the on-premise agent do not understand each other; ${ASK}.`,
  CTB_PROXY_AUTH: () => `The web proxy of the on-premise agent refused it; ${ASK}.`,
  CTB_RELAY_UNREACHABLE: () => `The on-premise agent cannot reach the relay; ${ASK}.`,
  CTB_NODE_REFUSED: () => 'This relay node does not accept the connection.',
  CTB_RELAY_BUSY: () => 'The relay is admitting many agent connections at once; retry after the Retry-After delay.',
};

/** The sentence a public caller reads for `err`. */
export function publicMessage(err: Pick<CtbridgeError, 'code' | 'params'>): string {
  return TEXT[err.code](err.params);
}

/** Every code's sentence, with sample numbers: for docs/errors.md and its test. */
export function publicMessages(sample: ErrorParams = {}): Record<ErrorCode, string> {
  return Object.fromEntries(Object.entries(TEXT).map(([code, f]) => [code, f(sample)])) as Record<ErrorCode, string>;
}
