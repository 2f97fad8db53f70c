/**
 * What the provider reads when the agent does not pass its message on:
 * `<response><error>TEXT</error></response>` (the form every Client Tracker
 * answer takes, so a provider shows it like one of Client Tracker's), with
 * the stable code in `X-Ctbridge-Error`. The reader is the provider's
 * developer or, through the provider's page, its user: say what happened to
 * the message (sent, not sent, or unknown), where, and what to do. Never put
 * the CT `key` in one.
 */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { ERROR_HEADER } from '../../src/protocol.js';
import { XML_CONTENT_TYPE } from '../../src/xml/kinds.js';
import { buildErrorResponse } from '../../src/xml/response.js';

/** Answers with an XML error (status from the code table unless given) unless the response already started. */
export function writeXmlError(res: ServerResponse, code: ErrorCode, text: string, headers: Record<string, string> = {}): number {
  const status = ERROR_CODES[code].status;
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return status;
  }
  const body = buildErrorResponse(text);
  res.writeHead(status, {
    'content-type': XML_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [ERROR_HEADER]: code,
    ...headers,
  });
  res.end(body);
  return status;
}

/** "the is_in_request message for 'cioc'" */
export function messageLabel(message: string | undefined, tunnel: string | undefined): string {
  const what = message ? `the ${message} message` : 'the message';
  return tunnel ? `${what} for '${tunnel}'` : what;
}

const NOT_RESENT = 'It was not sent again: check the Request in Client Tracker before trying again.';

export const egressText = {
  sourceNotAllowed: (address: string, file: string) =>
    `The ctbridge agent does not accept Client Tracker messages from ${address}: the address is not in egress.allowFrom in ${file}. The message was not sent; add the provider's address to egress.allowFrom, or send from an allowed host.`,
  badPath: (path: string, example: string) =>
    `The ctbridge agent takes Client Tracker messages at /t/<tunnel>/is_in_request, /t/<tunnel>/add_resource and /t/<tunnel>/remove_resource, not at '${path}'. The message was not sent; set the provider's Client Tracker RPC URL to ${example}.`,
  unknownTunnel: (tunnel: string, file: string, tunnels: readonly string[]) =>
    `The ctbridge agent has no tunnel named '${tunnel}' (the tunnels in ${file} are ${tunnels.map((t) => `'${t}'`).join(', ')}). The message was not sent; check the Client Tracker RPC URL configured in the provider.`,
  unknownMessage: (tunnel: string, name: string) =>
    name === ''
      ? `This is the Client Tracker RPC URL for '${tunnel}': the provider POSTs is_in_request, add_resource and remove_resource under it. Nothing was sent.`
      : `The ctbridge agent forwards only is_in_request, add_resource and remove_resource to Client Tracker for '${tunnel}', not '${name}'. The message was not sent; check the Client Tracker RPC URL configured in the provider.`,
  notPost: (label: string, method: string) =>
    `Client Tracker messages must be sent with POST, not ${method}; ${label} was not sent.`,
  encoded: (label: string, encoding: string) =>
    `The ctbridge agent cannot read a message sent with Content-Encoding '${encoding}'; ${label} was not sent. Send the XML uncompressed.`,
  tooLarge: (label: string, file: string, limit: number) =>
    `${capital(label)} is larger than egress.maxBody in ${file} (${limit} bytes); it was not sent to Client Tracker.`,
  invalid: (label: string, issues: string) =>
    `${capital(label)} was not sent to Client Tracker: it does not follow the Client Tracker schema.\n${issues}`,
  notConnected: (label: string) =>
    `The on-premise ctbridge agent is not connected to the relay, so ${label} was not sent to Client Tracker. Try again in a moment; if it keeps happening, check the agent's log for why it cannot reach the relay.`,
  refusedByRelay: (label: string, reason: string) =>
    `The ctbridge relay refused ${label} (${reason}); it was not sent to Client Tracker. Ask the relay operator to check the tunnel's Client Tracker settings.`,
  linkFailed: (label: string, reason: string) =>
    `The connection between the on-premise ctbridge agent and the relay failed (${reason}) after ${label} was handed to the relay, so it may or may not have reached Client Tracker. ${NOT_RESENT}`,
  ctUnreachable: (label: string, origin: string | undefined, problem: string | undefined) =>
    `The ctbridge relay could not reach Client Tracker${origin ? ` at ${origin}` : ''}${problem ? ` (${problem})` : ''}, so ${label} may or may not have reached it. ${NOT_RESENT} If it keeps happening, ask the relay operator to check the tunnel's Client Tracker RPC URL.`,
  timedOut: (label: string, seconds: number) =>
    `The relay did not answer ${label} within ${seconds} seconds, so it may or may not have reached Client Tracker. ${NOT_RESENT}`,
  badAnswer: (label: string, reason: string) =>
    `The relay's answer to ${label} could not be read (${reason}); the message may or may not have reached Client Tracker. ${NOT_RESENT}`,
  shuttingDown: (label: string) =>
    `The on-premise ctbridge agent is shutting down, so ${label} was not sent to Client Tracker. Try again in a minute.`,
};

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
