/**
 * The relay's side of the inspector (src/inspect/): one call per admitted
 * public request (PublicRequest.start → watch) that, when the response is
 * done, keeps what happened: the request as the caller sent it, the answer
 * as the caller got it (after a Client Tracker rewrite or an error page),
 * which agent and node served it, redacted. Bodies only with
 * `inspect.bodies`: then the first bytes each way are copied as they pass.
 * Client Tracker egress messages are kept by `egress()`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstValue, getHeader } from '../src/http/headers.js';
import type { RawExchange } from '../src/inspect/entry.js';
import { BodyTap } from '../src/inspect/redact-entry.js';
import { Inspector } from '../src/inspect/inspector.js';
import type { ExchangeContext } from './tunnel-kind.js';

/** What the request handler knows once the response is done. */
export interface RelayExchangeFacts {
  /** The agent's response head's fields (before the relay's changes), when one came. */
  response: readonly string[] | undefined;
  agentId: string | undefined;
  node: string | undefined;
  bytesIn: number;
  bytesOut: number;
}

/** One Client Tracker message an agent sent out through the relay. */
export interface RelayEgressRecord {
  requestId: string;
  tunnel: string;
  message: string;
  agentId: string;
  ctOrigin: string;
  start: number;
  status: number;
  code?: string;
  body: Buffer;
  answer?: { contentType: string | undefined; body: Buffer };
}

const ms = (start: number): number => Math.round((performance.now() - start) * 10) / 10;

const EGRESS_LABELS: Record<string, string> = { is_in_request: 'isInRequest', add_resource: 'pushResource', remove_resource: 'pushResourceRemove' };

export class RelayInspect extends Inspector {

  /**
   * Watches one admitted request until its response is done; `facts` is
   * asked then. Nothing is copied or redacted on the way: the entry holds
   * the request's header list as received and the agent's response head
   * (the ring redacts when someone looks). A `refused` request (answered
   * before any exchange) keeps no request body: the relay does not read
   * what it turned down, so tapping it would pull the upload in.
   */
  watch(req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, facts: () => RelayExchangeFacts, refused = false): void {
    if (!this.config.enabled) return;
    const start = performance.now();
    const startedAt = Date.now();
    const limit = this.config.bodies;
    let reqTap: BodyTap | undefined;
    let resTap: BodyTap | undefined;
    if (limit > 0) {
      if (!refused) {
        reqTap = new BodyTap(limit);
        req.on('data', reqTap.add);
      }
      resTap = new BodyTap(limit);
      const tap = resTap;
      const write = res.write;
      const end = res.end;
      res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
        if (typeof chunk === 'string' || chunk instanceof Uint8Array) tap.add(chunk);
        return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      } as ServerResponse['write'];
      res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
        if (typeof chunk === 'string' || chunk instanceof Uint8Array) tap.add(chunk);
        return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
      } as ServerResponse['end'];
    }
    res.once('close', () => {
      const f = facts();
      const responseHeaders = f.response ?? [];
      const entry: RawExchange = {
        side: 'relay',
        startedAt,
        requestId: ctx.requestId,
        tunnel: ctx.tunnel,
        kind: 'http',
        method: ctx.method,
        target: ctx.url,
        status: res.headersSent ? res.statusCode : 0,
        durationMs: ms(start),
        bytesIn: f.bytesIn,
        bytesOut: f.bytesOut,
        requestHeaders: req.rawHeaders,
        responseHeaders,
      };
      if (f.agentId !== undefined || f.node !== undefined) entry.servedBy = f.agentId ? `${f.agentId}${f.node ? ` via node ${f.node}` : ''}` : `node ${f.node}`;
      if (ctx.code) entry.code = ctx.code;
      if (ctx.ct) entry.ct = ctx.ct;
      if (reqTap) entry.requestBody = reqTap.raw(firstValue(req.headers['content-type']), firstValue(req.headers['content-encoding']));
      if (resTap) {
        const type = res.getHeader('content-type') ?? getHeader(responseHeaders, 'content-type');
        // The caller got the body as sent: a Client Tracker answer is sent decoded, anything else as the agent sent it.
        const encoding = ctx.ct ? undefined : getHeader(responseHeaders, 'content-encoding');
        entry.responseBody = resTap.raw(typeof type === 'string' ? type : undefined, encoding);
      }
      this.ring.record(entry);
    });
  }

  /** One egress message, once Client Tracker answered (or not). */
  egress(r: RelayEgressRecord): void {
    if (!this.config.enabled) return;
    const limit = this.config.bodies;
    const entry: RawExchange = {
      side: 'relay',
      startedAt: Date.now() - (performance.now() - r.start),
      requestId: r.requestId,
      tunnel: r.tunnel,
      kind: 'egress',
      method: 'POST',
      target: `/${r.message}`,
      status: r.status,
      durationMs: ms(r.start),
      bytesIn: r.body.length,
      bytesOut: r.answer?.body.length ?? 0,
      servedBy: `agent ${r.agentId} → Client Tracker at ${r.ctOrigin}`,
      requestHeaders: [],
      responseHeaders: r.answer?.contentType ? ['content-type', r.answer.contentType] : [],
      ct: { message: EGRESS_LABELS[r.message] ?? r.message, validation: 'not checked' },
    };
    if (r.code) entry.code = r.code;
    if (limit > 0) {
      // Copies: a view would hold the whole message in memory.
      entry.requestBody = { head: Buffer.from(r.body.subarray(0, limit)), total: r.body.length, contentType: 'application/xml', contentEncoding: undefined };
      if (r.answer) entry.responseBody = { head: Buffer.from(r.answer.body.subarray(0, limit)), total: r.answer.body.length, contentType: r.answer.contentType, contentEncoding: undefined };
    }
    this.ring.record(entry);
  }
}
