/**
 * Provider → Client Tracker messages (isInRequest, pushResource,
 * pushResourceRemove). The provider on the intranet POSTs to its agent; the
 * agent opens a stream with meta `{kind:'egress', tunnel}` to the relay, and
 * the relay POSTs the message to the tunnel's configured
 * `clientTracker.rpcUrl` and returns Client Tracker's answer.
 *
 * The relay is not an open proxy: the destination is only ever
 * `<rpcUrl><message>` of the stream's tunnel, for the three message names,
 * with a body of at most 1 MiB. A message is sent once: no retries (a push
 * must never be sent twice), and no pooled connection that could have gone
 * stale. The `key` in a message is a credential: it is never logged, and
 * `login` only as a short hash.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { RelayConfig } from '../../src/config/index.js';
import { CtbridgeError, ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { untrusted } from '../../src/log-text.js';
import type { Logger } from '../../src/log.js';
import type { TunnelStream } from '../../src/mux/stream.js';
import { REQUEST_ID_HEADER, SOFTWARE_VERSION } from '../../src/protocol.js';
import { shortHash } from '../../src/redact.js';
import { decodeEntities } from '../../src/xml/escape.js';
import { XML_CONTENT_TYPE } from '../../src/xml/kinds.js';
import type { ConnectedAgent } from '../agent-registry.js';
import { collectBody, header } from './body.js';
import { egressErrorText, type ErrorTextParams } from './error-text.js';
import { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';
import { writeXmlError } from './xml-error.js';

/** Path on the egress stream → Client Tracker RPC name. */
export const EGRESS_MESSAGES: ReadonlyMap<string, string> = new Map([
  ['/is_in_request', 'is_in_request'],
  ['/add_resource', 'add_resource'],
  ['/remove_resource', 'remove_resource'],
]);

export const MAX_EGRESS_BODY = 1024 * 1024;
/** Client Tracker's answers are small; more than this is not one. */
export const MAX_CT_ANSWER = 10 * 1024 * 1024;
export const CT_TIMEOUT_MS = 30_000;

export interface EgressOptions {
  metrics?: ClientTrackerMetrics;
  /** Time allowed for Client Tracker to answer a message, ms (default 30 s). */
  timeoutMs?: number;
}

export type EgressHandler = ((stream: TunnelStream, agent: ConnectedAgent) => void) & {
  /** Stops serving: open egress streams are destroyed. */
  close(): void;
};

interface StreamInfo {
  tunnel: string;
  agentId: string;
  connectionId: string;
  rpcUrl: string;
}

const LOGIN = /<(?:[\w.-]+:)?login(?:\s[^>]*)?>([^<]*)<\/(?:[\w.-]+:)?login\s*>/;
const CTID = /<(?:[\w.-]+:)?ctid(?:\s[^>]*)?>([^<]*)<\/(?:[\w.-]+:)?ctid\s*>/;

/** A leaf element's text from a message, decoded; undefined if absent or odd. */
function leaf(body: Buffer, pattern: RegExp): string | undefined {
  const raw = pattern.exec(body.toString('utf8'))?.[1];
  if (raw === undefined) return undefined;
  try {
    return decodeEntities(raw).trim();
  } catch {
    return undefined;
  }
}

/** Scheme, host and port of the RPC URL: never its path, query or user info. */
function originOf(rpcUrl: string): string {
  try {
    return new URL(rpcUrl).origin;
  } catch {
    return 'the configured address';
  }
}

/** Why Client Tracker could not be reached, in a few words. */
function describeNetworkError(err: Error & { code?: string }, timeoutMs: number, timedOut: boolean): string {
  if (timedOut) return `no answer within ${Math.round(timeoutMs / 100) / 10} seconds`;
  const code = err.code ?? '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (code === 'ETIMEDOUT') return 'connection timed out';
  if (/CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_SSL/i.test(code)) return `TLS problem: ${code}`;
  return code ? `network error ${code}` : 'network error';
}

export function createEgressHandler(config: RelayConfig, log: Logger, opts: EgressOptions = {}): EgressHandler {
  const timeoutMs = opts.timeoutMs ?? CT_TIMEOUT_MS;
  const streams = new WeakMap<Duplex, StreamInfo>();
  const open = new Set<TunnelStream>();
  const count = (labels: Record<string, string>): void => opts.metrics?.increment(CT_METRICS.egress, labels);

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 }, (req, res) => {
    const info = streams.get(req.socket);
    if (!info) {
      res.destroy();
      return;
    }
    serve(req, res, info);
  });
  // An egress stream with nothing happening on it for this long is closed.
  server.timeout = 2 * timeoutMs;

  const fail = (
    res: ServerResponse,
    info: StreamInfo,
    requestId: string,
    code: ErrorCode,
    params: Partial<ErrorTextParams> = {},
    status = ERROR_CODES[code].status,
    headers: Record<string, string> = {},
  ): void => {
    const text = egressErrorText(code, { tunnel: info.tunnel, ...params });
    writeXmlError(res, { status, code, text, requestId, headers: { connection: 'close', ...headers } });
  };

  const serve = (req: IncomingMessage, res: ServerResponse, info: StreamInfo): void => {
    const requestId = randomBytes(8).toString('hex');
    const start = performance.now();
    const path = (req.url ?? '').split('?')[0] ?? '';
    const message = EGRESS_MESSAGES.get(path);
    const base = { requestId, tunnel: info.tunnel, agentId: info.agentId, connectionId: info.connectionId };
    if (!message || req.method !== 'POST') {
      const shown = path.length > 60 ? `${path.slice(0, 57)}...` : path;
      log.warn({ ...base, method: req.method, path: shown }, 'egress refused: not a Client Tracker message');
      if (!message) fail(res, info, requestId, 'CTB_PATH_NOT_ALLOWED', { problem: shown });
      else fail(res, info, requestId, 'CTB_BAD_REQUEST', { problem: String(req.method).slice(0, 10) }, undefined, { allow: 'POST' });
      req.resume();
      return;
    }

    collectBody(req, MAX_EGRESS_BODY, (result) => {
      if (!result.ok) {
        if (result.tooLarge) {
          log.warn({ ...base, message, limit: MAX_EGRESS_BODY }, 'egress refused: message too large');
          fail(res, info, requestId, 'CTB_BODY_TOO_LARGE', { body: 'request', bytes: MAX_EGRESS_BODY });
        } else res.destroy();
        return;
      }
      const body = result.body;
      const login = leaf(body, LOGIN);
      const logFields = { ...base, message, login: login === undefined ? undefined : shortHash(login), ctid: leaf(body, CTID)?.slice(0, 40), bytesIn: body.length };
      const done = (fields: Record<string, unknown>, msg: string, warn = false): void => {
        const line = { ...logFields, ...fields, durationMs: Math.round((performance.now() - start) * 10) / 10 };
        if (warn) log.warn(line, msg);
        else log.info(line, msg);
      };
      forward(info.rpcUrl, message, body, timeoutMs, (outcome) => {
        if ('error' in outcome) {
          const reason = describeNetworkError(outcome.error, timeoutMs, outcome.timedOut);
          count({ tunnel: info.tunnel, message, status: 'unreachable' });
          done({ code: 'CTB_CT_UNREACHABLE', ct: originOf(info.rpcUrl), reason }, 'client tracker message failed', true);
          fail(res, info, requestId, 'CTB_CT_UNREACHABLE', { ctOrigin: originOf(info.rpcUrl), problem: reason });
          return;
        }
        if ('tooLarge' in outcome) {
          count({ tunnel: info.tunnel, message, status: 'too-large' });
          done({ code: 'CTB_CT_UNREACHABLE', ct: originOf(info.rpcUrl), status: outcome.status }, "client tracker's answer too large", true);
          fail(res, info, requestId, 'CTB_CT_UNREACHABLE', { ctOrigin: originOf(info.rpcUrl), problem: `its answer is larger than ${MAX_CT_ANSWER} bytes` });
          return;
        }
        count({ tunnel: info.tunnel, message, status: String(outcome.status) });
        done({ status: outcome.status, bytesOut: outcome.body.length }, 'client tracker message');
        if (res.headersSent || res.destroyed) return;
        const headers: Record<string, string | number> = { 'content-length': outcome.body.length, [REQUEST_ID_HEADER]: requestId };
        if (outcome.contentType !== undefined) headers['content-type'] = outcome.contentType;
        res.writeHead(outcome.status, headers);
        res.end(outcome.body);
      });
    });
  };

  const handler = ((stream: TunnelStream, agent: ConnectedAgent): void => {
    const meta = stream.meta;
    const tunnel = typeof meta.tunnel === 'string' ? meta.tunnel : '';
    // What the agent sent (tunnel, kind) is capped and cleaned before it reaches a log line or a message.
    const shownTunnel = untrusted(tunnel, 63) ?? '';
    const clog = { agentId: agent.agentId, connectionId: agent.connectionId, tunnel: shownTunnel };
    if (meta.kind !== 'egress') {
      const kind = untrusted(meta.kind, 20);
      log.warn({ ...clog, kind }, 'agent stream refused: unknown kind');
      stream.refuse(new CtbridgeError('CTB_PROTOCOL', `the relay accepts only egress streams from agents, not kind ${JSON.stringify(kind ?? null)}`));
      return;
    }
    const rpcUrl = Object.hasOwn(config.tunnels, tunnel) ? config.tunnels[tunnel]?.clientTracker?.rpcUrl : undefined;
    if (!agent.tunnels.includes(tunnel) || !rpcUrl) {
      const reason = !agent.tunnels.includes(tunnel)
        ? `agent '${agent.agentId}' does not serve tunnel '${shownTunnel}'`
        : `tunnel '${shownTunnel}' has no clientTracker.rpcUrl in the relay config`;
      log.warn({ ...clog, reason }, 'egress stream refused');
      stream.refuse(new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', `Client Tracker messages are not allowed here: ${reason}`));
      return;
    }
    streams.set(stream, { tunnel, agentId: agent.agentId, connectionId: agent.connectionId, rpcUrl });
    open.add(stream);
    stream.once('close', () => open.delete(stream));
    server.emit('connection', stream);
  }) as EgressHandler;
  handler.close = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return handler;
}

type ForwardOutcome =
  | { status: number; contentType: string | undefined; body: Buffer }
  | { tooLarge: true; status: number }
  | { error: Error & { code?: string }; timedOut: boolean };

/** One POST to Client Tracker: no retry, no pooled connection, one deadline for the whole exchange. */
function forward(rpcUrl: string, message: string, body: Buffer, timeoutMs: number, done: (outcome: ForwardOutcome) => void): void {
  let finished = false;
  let timedOut = false;
  const finish = (outcome: ForwardOutcome): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    done(outcome);
  };
  let target: URL;
  try {
    target = new URL(rpcUrl + message);
  } catch (err) {
    finish({ error: err as Error, timedOut: false });
    return;
  }
  const client = target.protocol === 'https:' ? https : http;
  const ctReq = client.request(target, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': XML_CONTENT_TYPE,
      'content-length': body.length,
      accept: 'application/xml, text/xml;q=0.9, */*;q=0.1',
      'user-agent': SOFTWARE_VERSION,
    },
  });
  const timer = setTimeout(() => {
    timedOut = true;
    ctReq.destroy(Object.assign(new Error('Client Tracker did not answer in time'), { code: 'ETIMEDOUT' }));
  }, timeoutMs);
  ctReq.on('error', (err) => finish({ error: err, timedOut }));
  ctReq.on('response', (ctRes) => {
    const status = ctRes.statusCode ?? 502;
    collectBody(ctRes, MAX_CT_ANSWER, (result) => {
      if (result.ok) finish({ status, contentType: header(ctRes.headers['content-type']), body: result.body });
      else if (result.tooLarge) {
        ctRes.destroy();
        finish({ tooLarge: true, status });
      } else finish({ error: result.error, timedOut });
    });
  });
  ctReq.end(body);
}
