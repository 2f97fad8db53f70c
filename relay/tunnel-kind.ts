/**
 * What a tunnel's kind decides in the relay's answer to a public request:
 * how the agent's response reaches the caller, and how the bridge's own
 * errors look. `http` passes the response through and shows errors as JSON
 * (relay/http-kind.ts); `clienttracker` reads the provider's answer whole,
 * rewrites and checks it, and shows errors as Client Tracker XML
 * (relay/clienttracker/kind-handler.ts).
 */
import type { ServerResponse } from 'node:http';
import type { CtbridgeError } from '../src/errors.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { CtSummary } from '../src/inspect/entry.js';
import type { ResponseHead } from '../src/mux/heads.js';

export interface ExchangeContext {
  requestId: string;
  tunnel: string;
  method: string;
  /** Path and query inside the tunnel. */
  url: string;
  /** The bridge error the answer carries, for the request log line (set by whoever answers one). */
  code?: string;
  /** That error's own message (intranet details included), for the log line only: the caller gets the public sentence. */
  reason?: string;
  /** Client Tracker tunnels: which message the answer was, and its check (for the inspector). */
  ct?: CtSummary;
}

export interface KindHandler {
  /**
   * Answers `res` with the agent's response: `head` has arrived, the body is
   * still to come on `ex` ('data' / 'end'; call `ex.consumed(n)` for the
   * bytes handed on). The request handler owns timeouts and resets.
   */
  respond(ex: Exchange, head: ResponseHead, res: ServerResponse, ctx: ExchangeContext): void;
  /** Answers with a bridge error in the kind's format. The response has not started. */
  sendError(res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext): void;
}

/** Which handler a tunnel uses. */
export type KindHandlerLookup = (tunnel: string) => KindHandler;
