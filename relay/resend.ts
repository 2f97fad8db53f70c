/**
 * Which public requests the relay sends again, to another agent or relay
 * node, after the exchange carrying them died (docs/errors.md, "Which
 * requests the relay re-sends"):
 *
 * - `agent_disconnected`: the link to the agent (or to the node that had
 *   the agent) closed under the exchange (CTB_AGENT_DISCONNECTED). The agent
 *   may have sent the request on to its target, so only a method that is
 *   safe to run twice is re-sent: GET, HEAD, OPTIONS.
 * - `node_turned_away`: another relay node had no agent for the tunnel any
 *   more (CTB_AGENT_NOT_CONNECTED from a node): no agent saw the request,
 *   so any method is re-sent.
 *
 * Either way only before the agent's response began (the caller has not
 * had a byte of it), only with a body that is empty or held whole by the
 * relay (a request body is kept, up to MAX_KEPT_BODY, only for a method
 * that may be re-sent), and at most MAX_RESENDS times. Everything else is
 * answered with the error that ended the exchange.
 */

import type { Logger } from '../src/log.js';
import type { Hop } from './admission.js';

/** Methods RFC 9110 calls safe: running one twice changes nothing on the target. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A request is sent at most this many times more than once. */
export const MAX_RESENDS = 2;

/** A request body up to this size is kept for a re-send (for a method that may be re-sent). */
export const MAX_KEPT_BODY = 64 * 1024;

export type ResendReason = 'agent_disconnected' | 'node_turned_away';

/**
 * The request body as far as a re-send is concerned: none, kept whole (it
 * has ended and every byte is held), still arriving, or not kept.
 */
export type BodyState = 'empty' | 'kept' | 'arriving' | 'not_kept';

export interface ExchangeEnd {
  method: string;
  /** The code of the error that ended the exchange. */
  code: string;
  /** The exchange went to another relay node (not to an agent of this one). */
  viaNode: boolean;
  body: BodyState;
  /** The agent's response head arrived (and so the caller's answer may have begun). */
  responseStarted: boolean;
  /** Times the request was re-sent already. */
  resends: number;
}

/** Whether a request body of `method` is kept for a re-send. */
export function keepsBody(method: string): boolean {
  return SAFE_METHODS.has(method);
}

/** The reason to send the request again, or undefined when the error goes to the caller. */
export function resendReason(end: ExchangeEnd): ResendReason | undefined {
  if (end.responseStarted || end.resends >= MAX_RESENDS) return undefined;
  if (end.body !== 'empty' && end.body !== 'kept') return undefined;
  if (end.code === 'CTB_AGENT_NOT_CONNECTED' && end.viaNode) return 'node_turned_away';
  if (end.code === 'CTB_AGENT_DISCONNECTED' && SAFE_METHODS.has(end.method)) return 'agent_disconnected';
  return undefined;
}

/**
 * A copy of a request body while it stays within `limit` bytes; once over
 * it, nothing is kept (the request can no longer be re-sent).
 */
export class BodyCopy {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private ended = false;

  constructor(private readonly limit = MAX_KEPT_BODY) {}

  add(chunk: Buffer): void {
    if (!this.chunks) return;
    this.size += chunk.length;
    if (this.size > this.limit) this.chunks = undefined;
    else this.chunks.push(chunk);
  }

  end(): void {
    this.ended = true;
  }

  get state(): BodyState {
    if (!this.chunks) return 'not_kept';
    return this.ended ? 'kept' : 'arriving';
  }

  /** The whole body, once it has ended within the limit. */
  get bytes(): Buffer | undefined {
    return this.ended && this.chunks ? Buffer.concat(this.chunks) : undefined;
  }
}

/** What a re-send is logged with: the request, why, and from where to where. */
export interface Resend {
  requestId: string;
  tunnel: string;
  method: string;
  reason: ResendReason;
  /** The code of the error that ended the exchange. */
  code: string;
  /** This re-send's number (1 for the first). */
  resends: number;
  from: Hop;
  to: Hop;
}

/** Logs a re-send (warn when a link dropped under it) and counts it in ctbridge_requests_resent_total. */
/** `metrics`: what counts re-sends (relay/metrics.ts RelayMetrics). */
export function reportResend(log: Logger, metrics: { resent(reason: ResendReason): void } | undefined, r: Resend): void {
  const { from, to } = r;
  const line = {
    requestId: r.requestId, tunnel: r.tunnel, method: r.method, reason: r.reason, code: r.code, resends: r.resends,
    fromAgentId: from.agent?.agentId, fromConnectionId: from.agent?.connectionId, fromNode: from.node,
    toAgentId: to.agent?.agentId, toConnectionId: to.agent?.connectionId, toNode: to.node,
  };
  if (r.reason === 'agent_disconnected') log.warn(line, 'request re-sent to another agent');
  else log.info(line, 'request re-sent to another agent');
  metrics?.resent(r.reason);
}
