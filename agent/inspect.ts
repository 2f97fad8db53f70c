/**
 * The agent's side of the inspector (src/inspect/): one call per exchange
 * (TunnelRequests.serve → watch) that keeps, once the exchange closes, the
 * request as the relay sent it and the target's answer, redacted, with the
 * time to the target's first byte; the provider's Client Tracker messages
 * (egress) with their name and schema check; and the replay: a kept request
 * (headers, and its body when kept whole) sent to the tunnel's configured
 * target again, never anywhere else.
 */
import type { Dispatcher } from 'undici';
import type { InspectConfig } from '../src/config/index.js';
import { getHeader } from '../src/http/headers.js';
import type { ReplayAnswer } from '../src/admin/exchanges-routes.js';
import type { CtSummary, RawBody, RawExchange, ReplaySource } from '../src/inspect/entry.js';
import { BodyTap } from '../src/inspect/redact-entry.js';
import { Inspector } from '../src/inspect/inspector.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { RequestHead } from '../src/mux/heads.js';
import type { RequestEntry } from './request-log.js';
import { targetError } from './target-errors.js';
import type { TunnelTarget } from './target-pool.js';

/** One provider message (egress) as the agent handled it. */
export interface AgentEgressRecord {
  requestId: string | undefined;
  tunnel: string | undefined;
  /** The message's label (isInRequest, pushResource, ...) or the path asked for. */
  message: string;
  start: number;
  status: number;
  code?: string;
  validation: CtSummary['validation'];
  firstError?: string;
  ctid?: string;
  headers: readonly string[];
  body: Buffer | undefined;
  bytesIn: number;
  answer?: { headers: readonly string[]; body: Buffer };
}

/** A replay reads at most this much of the target's answer (the rest is dropped). */
const MAX_REPLAY_ANSWER = 10 * 1024 * 1024;
/** Shown of a replay's answer when inspect.bodies is 0. */
const REPLAY_SHOWN = 16 * 1024;

const EMPTY = Buffer.alloc(0);

/** undici's response headers as a flat name/value list. */
function flatHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) out.push(k, x);
  return out;
}

const ms = (from: number, to = performance.now()): number => Math.round((to - from) * 10) / 10;

/** What a replay needs of the agent's tunnel requests (agent/tunnel-requests.ts TunnelRequests): the targets as configured now, and the headers a target gets. */
export interface ReplayTargets {
  targetsNow(): ReadonlyMap<string, TunnelTarget>;
  targetHeaders(head: RequestHead, target: TunnelTarget): string[];
}

export class AgentInspect extends Inspector {
  private replays = 0;

  constructor(config: InspectConfig, private readonly file: () => string) {
    super(config);
  }

  /** Watches one exchange the relay opened until it closes. */
  watch(ex: Exchange, entry: RequestEntry, target: TunnelTarget): void {
    if (!this.config.enabled) return;
    const startedAt = Date.now();
    const limit = this.config.bodies;
    const head = ex.head;
    let reqTap: BodyTap | undefined;
    let resTap: BodyTap | undefined;
    // The request body as the relay sends it; without kept bodies only a bodiless request can be replayed.
    if (limit > 0) {
      reqTap = new BodyTap(limit);
      ex.on('data', reqTap.add);
      const tap = (resTap = new BodyTap(limit));
      const send = ex.send;
      ex.send = (chunk: Buffer): boolean => {
        tap.add(chunk);
        return send.call(ex, chunk);
      };
    }
    ex.once('close', () => {
      const response = ex.response;
      const e: RawExchange = {
        side: 'agent',
        startedAt,
        requestId: head.requestId,
        tunnel: head.tunnel,
        kind: head.kind === 'upgrade' ? 'upgrade' : 'http',
        method: head.method,
        target: head.target,
        status: entry.status,
        durationMs: ms(entry.start),
        bytesIn: ex.bytesIn,
        bytesOut: ex.bytesOut,
        servedBy: target.origin,
        requestHeaders: head.headers,
        responseHeaders: response ? response.headers : [],
      };
      if (entry.headersAt !== undefined) e.firstByteMs = ms(entry.start, entry.headersAt);
      if (entry.code) e.code = entry.code;
      const requestBody = reqTap?.raw(getHeader(head.headers, 'content-type'), getHeader(head.headers, 'content-encoding'));
      if (requestBody) e.requestBody = requestBody;
      if (resTap && response) e.responseBody = resTap.raw(getHeader(response.headers, 'content-type'), getHeader(response.headers, 'content-encoding'));
      let source: ReplaySource | undefined;
      // Replayable only with the whole request: the relay ended it (not reset midway) and every byte of it was kept.
      const keptWhole = requestBody !== undefined && requestBody.total === ex.bytesIn && requestBody.head.length === requestBody.total;
      const body = !ex.peerEnded ? undefined : ex.bytesIn === 0 ? EMPTY : keptWhole ? requestBody.head : undefined;
      if (head.kind === 'http' && body) {
        source = { method: head.method, target: head.target, headers: head.headers, body };
        e.replayable = true;
      }
      this.ring.record(e, source);
    });
  }

  /** One provider message through the egress listener. */
  egress(r: AgentEgressRecord): void {
    if (!this.config.enabled) return;
    const limit = this.config.bodies;
    const ct: CtSummary = { message: r.message, validation: r.validation };
    if (r.firstError) ct.firstError = r.firstError;
    if (r.ctid) ct.id = r.ctid;
    const e: RawExchange = {
      side: 'agent',
      startedAt: Date.now() - (performance.now() - r.start),
      requestId: r.requestId ?? '',
      tunnel: r.tunnel ?? '',
      kind: 'egress',
      method: 'POST',
      target: r.message,
      status: r.status,
      durationMs: ms(r.start),
      bytesIn: r.bytesIn,
      bytesOut: r.answer?.body.length ?? 0,
      servedBy: 'the relay → Client Tracker',
      requestHeaders: r.headers,
      responseHeaders: r.answer ? r.answer.headers : [],
      ct,
    };
    if (r.code) e.code = r.code;
    // A copy: a view would hold the whole message in memory.
    const raw = (body: Buffer, headers: readonly string[]): RawBody => ({ head: Buffer.from(body.subarray(0, limit)), total: body.length, contentType: getHeader(headers, 'content-type'), contentEncoding: undefined });
    if (limit > 0 && r.body) e.requestBody = raw(r.body, r.headers);
    if (limit > 0 && r.answer) e.responseBody = raw(r.answer.body, r.answer.headers);
    this.ring.record(e);
  }

  /** Sends the kept request `requestId` to its tunnel's configured target again. */
  async replay(requestId: string, requests: ReplayTargets): Promise<ReplayAnswer> {
    const found = this.ring.replaySource(requestId);
    if (!found) {
      const kept = this.ring.get(requestId);
      return kept
        ? { ok: false, status: 409, error: `exchange ${requestId} cannot be replayed: its request body was not kept whole (raise inspect.bodies in ${this.file()})` }
        : { ok: false, status: 404, error: `no exchange ${requestId.slice(0, 40)} is kept here (only the last ones are, per tunnel)` };
    }
    const { entry, source } = found;
    const target = requests.targetsNow().get(entry.tunnel);
    if (!target) return { ok: false, status: 409, error: `tunnel '${entry.tunnel}' is no longer in ${this.file()}: nothing to send it to` };
    const limit = Math.max(this.config.bodies, REPLAY_SHOWN);
    const id = `${requestId}-r${++this.replays}`;
    const headers = requests.targetHeaders({ kind: 'http', tunnel: entry.tunnel, method: source.method, target: source.target, headers: [...source.headers], requestId: id }, target);
    const start = performance.now();
    const e: RawExchange = {
      side: 'agent',
      startedAt: Date.now(),
      requestId: id,
      tunnel: entry.tunnel,
      kind: 'http',
      method: source.method,
      target: source.target,
      status: 0,
      durationMs: 0,
      bytesIn: source.body.length,
      bytesOut: 0,
      servedBy: target.origin,
      requestHeaders: headers,
      responseHeaders: [],
      replayOf: requestId,
      replayable: true,
    };
    try {
      const answer = await target.pool.request({
        path: target.basePath + source.target,
        method: source.method as Dispatcher.HttpMethod,
        headers,
        body: source.body.length > 0 ? source.body : null,
        headersTimeout: target.config.timeouts.idle,
        bodyTimeout: target.config.timeouts.idle,
      });
      e.firstByteMs = ms(start);
      e.status = answer.statusCode;
      e.responseHeaders = flatHeaders(answer.headers);
      const tap = new BodyTap(limit);
      for await (const chunk of answer.body) {
        tap.add(chunk as Buffer);
        if (tap.total > MAX_REPLAY_ANSWER) break;
      }
      e.bytesOut = tap.total;
      const type = answer.headers['content-type'];
      const encoding = answer.headers['content-encoding'];
      e.responseBody = tap.raw(Array.isArray(type) ? type[0] : type, Array.isArray(encoding) ? encoding[0] : encoding);
    } catch (err) {
      const failure = targetError(err, { target, file: this.file(), responseStarted: e.status !== 0 });
      e.code = failure.code;
      if (e.status === 0) e.status = failure.status;
    }
    e.durationMs = ms(start);
    this.ring.record(e, { ...source });
    return { ok: true, original: entry, replay: this.ring.get(id)! };
  }
}
