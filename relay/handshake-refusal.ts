/**
 * The one place that words what a link caller hears when the relay refuses
 * it (an agent's or another relay node's WebSocket upgrade, or the link
 * right after it).
 *
 * Before the caller has proved anything (no token verified, no cluster
 * proof), it hears what any public caller hears: the code, the plain
 * sentence of src/http/public-message.ts and a request id; never the
 * error's own message, which names config keys (auth.revoked.agents,
 * cluster.peers), key ids, host names and agent ids. The caller logs that
 * message with the same request id, so the operator finds it.
 *
 * A refusal before the WebSocket exists is an HTTP answer: the status of
 * the error's code, the JSON error body, `Connection: close`. One after it
 * is a WebSocket close with a code and a reason (src/protocol.ts
 * CloseCode) of at most 123 bytes. `readRefusal` is the dialing side's
 * reading of the HTTP answer.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CtbridgeError } from '../src/errors.js';
import { readErrorReason, REFUSAL_BODY_MS, refusalText } from '../src/http/error-response.js';
import { publicMessage } from '../src/http/public-message.js';
import { nextRequestId } from '../src/request-id.js';
import type { TokenError } from '../src/token.js';
import { endWithRawError } from './raw-response.js';

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
const MAX_CLOSE_REASON = 123;

/**
 * Answers a refused upgrade with the code, the public sentence and a request
 * id (the caller logs the error's message with it); returns that id.
 * `retryAfterS`: for CTB_RELAY_BUSY, the seconds the agent is asked to wait
 * (relay/handshake-gate.ts computes them from the relay's admission rate).
 */
export function refuseHandshake(socket: Duplex, err: CtbridgeError, retryAfterS?: number, requestId: string = nextRequestId()): string {
  // A reconnect storm: the agent waits about this long (it adds its own jitter), not its growing backoff.
  const retryAfter = err.code === 'CTB_SHUTTING_DOWN' ? 1 : err.code === 'CTB_RELAY_BUSY' ? (retryAfterS ?? 1) : undefined;
  endWithRawError(socket, err, requestId, { cors: false, retryAfterS: retryAfter });
  return requestId;
}

/** `sentence (request id X)` within the 123 bytes of a close reason (the sentence is cut, never the id). */
function closeReason(sentence: string, requestId: string): string {
  const suffix = ` (request id ${requestId})`;
  const room = MAX_CLOSE_REASON - Buffer.byteLength(suffix);
  let s = sentence.replace(/\.$/, '');
  while (Buffer.byteLength(s) > room) s = s.slice(0, -2) + '…';
  return s + suffix;
}

/** The close reason for a caller that has proved nothing yet: the public sentence and the request id. */
export function publicCloseReason(err: Pick<CtbridgeError, 'code' | 'params'>, requestId: string): string {
  return closeReason(publicMessage(err), requestId);
}

/**
 * The close reason for an agent whose token the relay verified earlier and
 * that no longer holds (a reload revoked it or removed its key, or it
 * expired): what the agent's operator can do about it, never the relay's
 * config keys or key ids (those go to the relay's log line with the id).
 */
export function verifiedTokenCloseReason(err: Pick<TokenError, 'code' | 'params' | 'reason'>, requestId: string): string {
  switch (err.reason) {
    case 'expired':
      return closeReason("This agent's token has expired; ask the relay operator for a new token", requestId);
    case 'revoked':
      return closeReason("The relay operator revoked this agent's token; ask them for a new one", requestId);
    case 'unknown_key':
    case 'bad_signature':
      return closeReason("The relay no longer has the key that signed this agent's token; ask for a new token", requestId);
    case 'wrong_audience':
    case 'wrong_issuer':
      return closeReason('The relay now takes tokens issued for another relay; ask the relay operator for a new token', requestId);
    default:
      return publicCloseReason(err, requestId);
  }
}

/**
 * The other side's reading of such a refusal: `CODE: sentence (request id X)`,
 * cleaned for a log line (undefined if none); at most 4 KiB for at most `ms`.
 */
export function readRefusal(res: IncomingMessage, ms = REFUSAL_BODY_MS): Promise<string | undefined> {
  return new Promise((resolve) => readErrorReason(res, (body) => resolve(body ? refusalText(body) : undefined), ms));
}
