/**
 * What a tunnel kind other than plain `http` may change in the request
 * handler: how the target's response reaches the caller, and how the
 * bridge's own errors are shown (JSON for http; XML Client Tracker can
 * display for `clienttracker`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CtbridgeError } from '../src/errors.js';

export interface ExchangeContext {
  requestId: string;
  tunnel: string;
  /** Path and query inside the tunnel. */
  url: string;
}

export interface KindHandler {
  /** When true, handleResponse gets the target's response instead of it being piped through. */
  readonly selfHandleResponse: boolean;
  handleResponse?(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext): void;
  /** Answers with a bridge error in the kind's format. The response has not started. */
  sendError(res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext): void;
}

/** Which handler a tunnel uses; undefined means plain HTTP. */
export type KindHandlerLookup = (tunnel: string) => KindHandler | undefined;
