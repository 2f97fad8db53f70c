/**
 * What a Client Tracker user reads when the bridge fails: one sentence per
 * error code, shown as-is inside `<response><error>…</error></response>`
 * (docs/client-tracker-protocol.md: "the error text is shown to the CT user as-is").
 *
 * Each sentence says which provider (the tunnel name the CT admin knows),
 * what failed, and what to do, in plain words. Never put a secret (the CT
 * `key`, a token, a query string) or a stack trace in one: the parameters
 * below carry only numbers, names and short descriptions.
 *
 * This is the only table of such texts; keep it complete (the Record type
 * makes the compiler check that every code has a sentence).
 */
import type { ErrorCode, ErrorParams } from '../../src/errors.js';

/**
 * What a sentence may say: the error's own params (seconds, bytes, whose
 * body, Client Tracker's origin, a short problem such as "line 4, element
 * <resourceInfoURL>: …"), plus the tunnel and, for CTB_UPSTREAM_INVALID,
 * the provider's HTTP status and content type.
 */
export interface ErrorTextParams extends ErrorParams {
  /** The tunnel name: how the CT administrator knows the provider. */
  tunnel: string;
  status?: number;
  contentType?: string;
}

const ASK_IT = 'ask your IT team';

function within(p: ErrorTextParams): string {
  if (p.seconds === undefined) return 'in time';
  const s = Math.round(p.seconds * 10) / 10;
  return `within ${s} second${s === 1 ? '' : 's'}`;
}

function sizeLimit(p: ErrorTextParams): string {
  return p.bytes === undefined ? '' : ` (${p.bytes} bytes)`;
}

function answerDescription(p: ErrorTextParams): string {
  const parts: string[] = [];
  if (p.status !== undefined) parts.push(`HTTP ${p.status}`);
  const type = p.contentType?.split(';')[0]?.trim();
  parts.push(type ? type : 'no content type');
  return parts.join(', ');
}

const TEXT: Record<ErrorCode, (p: ErrorTextParams) => string> = {
  CTB_AGENT_NOT_CONNECTED: (p) =>
    `The on-premise ctbridge agent for '${p.tunnel}' is not connected to the relay; ${ASK_IT} to check the agent service.`,
  CTB_AGENT_DISCONNECTED: (p) =>
    `The connection to the on-premise ctbridge agent for '${p.tunnel}' dropped before the provider's answer arrived; try again, and if it keeps happening ${ASK_IT} to check the agent service.`,
  CTB_AGENT_BUSY: (p) =>
    `The on-premise ctbridge agent for '${p.tunnel}' is handling too many requests at the moment; try again in a few seconds.`,
  CTB_TARGET_UNREACHABLE: (p) =>
    `The on-premise ctbridge agent for '${p.tunnel}' could not reach the provider's server; ${ASK_IT} to check that the provider's web site is running.`,
  CTB_TARGET_TIMEOUT: (p) =>
    `The provider's server behind '${p.tunnel}' did not answer ${within(p)}; try again, and if it keeps happening ${ASK_IT} to check that the provider's web site is running.`,
  CTB_TARGET_BAD_RESPONSE: (p) =>
    `The provider's server behind '${p.tunnel}' sent an answer that is not valid HTTP; ${ASK_IT} to check the provider's web site and its logs.`,
  CTB_REQUEST_TIMEOUT: (p) =>
    `The provider behind '${p.tunnel}' did not answer ${within(p)}; try again, and if it keeps happening ${ASK_IT} to check that the provider's web site is running.`,
  CTB_BODY_TOO_LARGE: (p) =>
    p.body === 'request'
      ? `The request to the provider behind '${p.tunnel}' is larger than the bridge allows${sizeLimit(p)}; it was not sent.`
      : `The provider's answer for '${p.tunnel}' is larger than the bridge allows${sizeLimit(p)}; ask the relay operator to raise the limit if such answers are expected.`,
  CTB_UPSTREAM_INVALID: (p) =>
    p.problem
      ? `The provider behind '${p.tunnel}' answered with XML that is not a valid Client Tracker answer (${p.problem}); ask the provider's developers to correct it.`
      : `The provider behind '${p.tunnel}' answered something that is not Client Tracker XML (${answerDescription(p)}); ${ASK_IT} to check the provider's web site for errors.`,
  CTB_XML_INVALID: (p) =>
    `A Client Tracker message for '${p.tunnel}' does not follow the Client Tracker schema${p.problem ? ` (${p.problem})` : ''}; ask the provider's developers to correct it.`,
  CTB_PATH_NOT_ALLOWED: (p) =>
    `The relay does not open this address of the provider behind '${p.tunnel}'; check the Resource Type's URLs in Client Tracker, or ask the relay operator to allow the path for this tunnel.`,
  CTB_SOURCE_NOT_ALLOWED: (p) =>
    `The relay does not accept calls for '${p.tunnel}' from this Client Tracker server's address; ask the relay operator to add the address to the tunnel's allowFrom list.`,
  CTB_TUNNEL_UNKNOWN: (p) =>
    `The relay has no provider named '${p.tunnel}'; check the Resource Type's URLs in Client Tracker.`,
  CTB_TUNNEL_NOT_ALLOWED: (p) =>
    `The on-premise ctbridge agent is not allowed to serve '${p.tunnel}'; ${ASK_IT} to check the agent's token and configuration.`,
  CTB_BAD_REQUEST: (p) =>
    `The relay could not forward a malformed request to the provider behind '${p.tunnel}'${p.problem ? ` (${p.problem})` : ''}; check the Resource Type's URLs in Client Tracker.`,
  CTB_CT_UNREACHABLE: (p) =>
    `The ctbridge relay could not reach Client Tracker${p.ctOrigin ? ` at ${p.ctOrigin}` : ''}${p.problem ? ` (${p.problem})` : ''}; try again later, and if it keeps happening ask the relay operator to check the Client Tracker RPC URL for '${p.tunnel}'.`,
  CTB_CANCELLED: (p) =>
    `The request to the provider behind '${p.tunnel}' was cancelled before it completed; try again.`,
  CTB_SHUTTING_DOWN: (p) =>
    `The bridge for '${p.tunnel}' is restarting; try again in a minute.`,
  CTB_PROTOCOL: (p) =>
    `The relay and the on-premise ctbridge agent for '${p.tunnel}' do not understand each other (different versions); ${ASK_IT} to update the agent.`,
  CTB_PROXY_AUTH: (p) =>
    `The company's web proxy refused the on-premise ctbridge agent for '${p.tunnel}'; ${ASK_IT} to check the agent's proxy settings.`,
  CTB_RELAY_UNREACHABLE: (p) =>
    `The on-premise ctbridge agent for '${p.tunnel}' cannot reach the relay; ${ASK_IT} to check the agent's network connection.`,
  CTB_RELAY_BUSY: (p) =>
    `The on-premise ctbridge agent for '${p.tunnel}' is reconnecting to the relay; try again in a minute.`,
  CTB_TOKEN_INVALID: (p) =>
    `The relay refused the on-premise ctbridge agent for '${p.tunnel}' (its token is invalid or expired); ${ASK_IT} to renew the agent's token.`,
  CTB_CONFIG_INVALID: (p) =>
    `The bridge for '${p.tunnel}' is misconfigured; ask the relay operator to check its configuration.`,
  // Between relay nodes only; never an answer to a Client Tracker call.
  CTB_NODE_REFUSED: (p) =>
    `The relay nodes behind '${p.tunnel}' could not reach each other; ask the relay operator to check the cluster configuration.`,
};

/** The sentence for `code`; an unknown code (e.g. from a newer agent) gets a generic one. */
export function errorText(code: string, params: ErrorTextParams): string {
  const sentence = (TEXT as Record<string, ((p: ErrorTextParams) => string) | undefined>)[code];
  if (sentence) return sentence(params);
  return `The bridge for '${params.tunnel}' failed (${code.replace(/[^A-Z0-9_]/g, '').slice(0, 40) || 'unknown error'}); ${ASK_IT} to check the ctbridge agent and relay logs.`;
}
