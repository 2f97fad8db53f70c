/**
 * The request head the relay sends the agent for a public request: method
 * and target byte for byte; first the relay's own forwarded headers and
 * request id, then the caller's header pairs in order with duplicates,
 * minus hop-by-hop fields (and those the caller's `Connection` names) and
 * minus every forwarding header a caller could forge. Nothing a caller
 * sends can remove or replace the relay's headers: they are added after
 * everything the caller's headers could do, and they come first, so a
 * server that keeps only its first N fields still has them.
 *
 * The body is never part of the head: it follows as DATA frames and END,
 * so no byte of it can be read as another request (no smuggling).
 */
import type { IncomingMessage } from 'node:http';
import { endToEnd } from '../src/http/headers.js';
import type { ExchangeKind, RequestHead } from '../src/mux/heads.js';
import type { Admitted } from './admission.js';
import { forwardedPairs, RELAY_OWNED } from './forwarded.js';

/** Answered by the relay itself (100-continue), never forwarded. */
const RELAY_HANDLED = ['expect'];
const DROP: ReadonlySet<string> = new Set([...RELAY_OWNED, ...RELAY_HANDLED]);

export function requestHead(req: IncomingMessage, admitted: Admitted, requestId: string, kind: ExchangeKind): RequestHead {
  const headers = forwardedPairs(admitted.forwarded, requestId);
  for (const pair of endToEnd(req.rawHeaders, { keepUpgrade: kind === 'upgrade', alsoDrop: DROP })) headers.push(pair);
  return { kind, tunnel: admitted.route.tunnel, method: req.method ?? 'GET', target: admitted.route.url, headers, requestId };
}
