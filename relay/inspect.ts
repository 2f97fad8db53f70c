/**
 * The relay's side of the inspector (src/inspect/): one call per admitted
 * public request (PublicRequest.start → watch) that, when the response is
 * done, keeps what happened: the request as the caller sent it, the answer
 * as the caller got it (after a Client Tracker rewrite or an error page),
 * which agent and node served it, redacted. Bodies only with
 * `inspect.bodies`: then the first bytes each way are copied as they pass.
 * Client Tracker egress messages are kept by `egress()`.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { InspectConfig } from '../src/config/index.js';
import { firstValue } from '../src/http/headers.js';
import type { CtSummary, InspectEntry } from '../src/inspect/entry.js';
import { BodyTap, keepBody, keepHeaderObject, keepHeaders } from '../src/inspect/redact-entry.js';
import { ExchangeRing } from '../src/inspect/ring.js';
import { redactUrl } from '../src/redact.js';
import type { ExchangeContext } from './tunnel-kind.js';

/** What the request handler knows once the response is done. */
export interface RelayExchangeFacts {
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

/** Name/value pairs from writeHead's arguments: a flat list, a list of pairs, or an object. */
function headPairs(headers: unknown): [string, string][] {
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return keepHeaders((headers as string[][]).flat());
    return keepHeaders(headers as string[]);
  }
  return headers && typeof headers === 'object' ? keepHeaderObject(headers as OutgoingHttpHeaders) : [];
}

const EGRESS_LABELS: Record<string, string> = { is_in_request: 'isInRequest', add_resource: 'pushResource', remove_resource: 'pushResourceRemove' };

export class RelayInspect {
  readonly ring: ExchangeRing;

  constructor(private config: InspectConfig) {
    this.ring = new ExchangeRing({ entries: config.entries, maxBytes: config.maxBytes });
  }

  /** A reloaded config's `inspect:`. */
  update(config: InspectConfig): void {
    this.config = config;
    this.ring.setLimits({ entries: config.entries, maxBytes: config.maxBytes });
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** Watches one admitted request until its response is done; `facts` is asked then. */
  watch(req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext, facts: () => RelayExchangeFacts): void {
    if (!this.config.enabled) return;
    const start = performance.now();
    const at = new Date().toISOString();
    let head: [string, string][] | undefined;
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      head = headPairs(typeof args[1] === 'string' || args[1] === undefined ? args[2] : args[1]);
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['writeHead'];
    const limit = this.config.bodies;
    let reqTap: BodyTap | undefined;
    let resTap: BodyTap | undefined;
    if (limit > 0) {
      reqTap = new BodyTap(limit);
      req.on('data', reqTap.add);
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
      // Headers set with setHeader (Retry-After) besides those of writeHead.
      const sent = head ?? [];
      const names = new Set(sent.map(([k]) => k.toLowerCase()));
      const extra = keepHeaderObject(res.getHeaders()).filter(([k]) => !names.has(k.toLowerCase()));
      const responseHeaders = [...sent, ...extra];
      const headerOf = (name: string): string | undefined => responseHeaders.find(([k]) => k.toLowerCase() === name)?.[1];
      const entry: InspectEntry = {
        seq: 0,
        side: 'relay',
        at,
        requestId: ctx.requestId,
        tunnel: ctx.tunnel,
        kind: 'http',
        method: ctx.method,
        path: redactUrl(ctx.url),
        status: res.headersSent ? res.statusCode : 0,
        durationMs: ms(start),
        bytesIn: f.bytesIn,
        bytesOut: f.bytesOut,
        servedBy: f.agentId ? `${f.agentId}${f.node ? ` via node ${f.node}` : ''}` : f.node ? `node ${f.node}` : undefined,
        requestHeaders: keepHeaders(req.rawHeaders),
        responseHeaders,
      };
      if (ctx.code) entry.code = ctx.code;
      if (ctx.ct) entry.ct = ctx.ct;
      if (reqTap) entry.requestBody = reqTap.shown(firstValue(req.headers['content-type']), firstValue(req.headers['content-encoding']));
      if (resTap) entry.responseBody = resTap.shown(headerOf('content-type'), headerOf('content-encoding'));
      this.ring.record(entry);
    });
  }

  /** One egress message, once Client Tracker answered (or not). */
  egress(r: RelayEgressRecord): void {
    if (!this.config.enabled) return;
    const limit = this.config.bodies;
    const ct: CtSummary = { message: EGRESS_LABELS[r.message] ?? r.message, validation: 'not checked' };
    const entry: InspectEntry = {
      seq: 0,
      side: 'relay',
      at: new Date(Date.now() - (performance.now() - r.start)).toISOString(),
      requestId: r.requestId,
      tunnel: r.tunnel,
      kind: 'egress',
      method: 'POST',
      path: `/${r.message}`,
      status: r.status,
      durationMs: ms(r.start),
      bytesIn: r.body.length,
      bytesOut: r.answer?.body.length ?? 0,
      servedBy: `agent ${r.agentId} → Client Tracker at ${r.ctOrigin}`,
      requestHeaders: [],
      responseHeaders: r.answer?.contentType ? [['content-type', r.answer.contentType]] : [],
      ct,
    };
    if (r.code) entry.code = r.code;
    if (limit > 0) {
      entry.requestBody = keepBody(r.body.subarray(0, limit), r.body.length, 'application/xml', undefined);
      if (r.answer) entry.responseBody = keepBody(r.answer.body.subarray(0, limit), r.answer.body.length, r.answer.contentType, undefined);
    }
    this.ring.record(entry);
  }
}
