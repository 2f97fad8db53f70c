/**
 * Provider → Client Tracker messages (isInRequest, pushResource,
 * pushResourceRemove). The provider on the intranet POSTs to its agent; the
 * agent checks the message and opens an exchange of kind `egress` to the
 * relay (`POST /<message>`), and the relay POSTs the message to the
 * tunnel's configured `clientTracker.rpcUrl` and returns Client Tracker's
 * answer on the exchange.
 *
 * The relay is not an open proxy: the destination is only ever
 * `<rpcUrl><message>` of the exchange's tunnel, for the three message names,
 * with a body of at most 1 MiB. A message is sent once: no retries (a push
 * must never be sent twice), and no pooled connection that could have gone
 * stale. The `key` in a message is a credential: it is never logged, and
 * `login` only as a short hash. Failures go back as errors with data (code,
 * Client Tracker's origin, what went wrong); the agent words them for the
 * provider.
 */
import http from 'node:http';
import https from 'node:https';
import type { RelayConfig } from '../../src/config/index.js';
import { CtbridgeError } from '../../src/errors.js';
import { firstValue } from '../../src/http/headers.js';
import type { Logger } from '../../src/log.js';
import type { Exchange } from '../../src/mux/exchange.js';
import { SOFTWARE_VERSION } from '../../src/protocol.js';
import { shortHash } from '../../src/redact.js';
import { isEgressMessageName, MAX_CT_ANSWER, MAX_EGRESS_BODY } from '../../src/xml/egress-messages.js';
import { decodeEntities } from '../../src/xml/escape.js';
import { XML_CONTENT_TYPE } from '../../src/xml/kinds.js';
import type { ConnectedAgent } from '../agent-registry.js';
import type { RelayEgressRecord } from '../inspect.js';
import { collectBody, collectExchange } from './body.js';
import { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';

export const CT_TIMEOUT_MS = 30_000;

export interface EgressOptions {
  metrics?: ClientTrackerMetrics;
  /** Time allowed for Client Tracker to answer a message, ms (default 30 s). */
  timeoutMs?: number;
  /** Keeps each message for the admin listener's inspector (relay/inspect.ts). */
  inspect?: (record: RelayEgressRecord) => void;
}

export type EgressHandler = ((exchange: Exchange, agent: ConnectedAgent) => void) & {
  /** Stops serving: open egress exchanges are reset. */
  close(): void;
};

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

export function createEgressHandler(live: { readonly config: RelayConfig }, log: Logger, opts: EgressOptions = {}): EgressHandler {
  const timeoutMs = opts.timeoutMs ?? CT_TIMEOUT_MS;
  const open = new Set<Exchange>();
  const count = (labels: Record<string, string>): void => opts.metrics?.increment(CT_METRICS.egress, labels);

  const handler = ((ex: Exchange, agent: ConnectedAgent): void => {
    const { tunnel, method, target, requestId } = ex.head;
    const base = { requestId, tunnel, agentId: agent.agentId, connectionId: agent.connectionId };
    const refuse = (err: CtbridgeError, fields: Record<string, unknown>, msg: string): void => {
      log.warn({ ...base, code: err.code, ...fields }, msg);
      ex.reset(err);
    };
    const { tunnels } = live.config;
    const rpcUrl = Object.hasOwn(tunnels, tunnel) ? tunnels[tunnel]?.clientTracker?.rpcUrl : undefined;
    if (!agent.tunnels.includes(tunnel) || !rpcUrl) {
      const reason = !agent.tunnels.includes(tunnel)
        ? `agent '${agent.agentId}' does not serve tunnel '${tunnel}'`
        : `tunnel '${tunnel}' has no clientTracker.rpcUrl in the relay config`;
      refuse(new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', `Client Tracker messages are not allowed here: ${reason}`), { reason }, 'egress refused');
      return;
    }
    const message = target.split('?')[0].slice(1);
    if (!isEgressMessageName(message) || method !== 'POST') {
      const shown = target.length > 60 ? `${target.slice(0, 57)}...` : target;
      const err = !isEgressMessageName(message)
        ? new CtbridgeError('CTB_PATH_NOT_ALLOWED', `the relay forwards only is_in_request, add_resource and remove_resource, not ${shown}`, { params: { problem: shown } })
        : new CtbridgeError('CTB_BAD_REQUEST', `Client Tracker messages are sent with POST, not ${method}`, { params: { problem: method } });
      refuse(err, { method, path: shown }, 'egress refused: not a Client Tracker message');
      return;
    }
    open.add(ex);
    ex.once('close', () => open.delete(ex));
    const start = performance.now();
    collectExchange(ex, MAX_EGRESS_BODY, (result) => {
      if (!result.ok) {
        if (result.tooLarge) {
          refuse(new CtbridgeError('CTB_BODY_TOO_LARGE', `the message is larger than the relay's limit of ${MAX_EGRESS_BODY} bytes`, {
            params: { bytes: MAX_EGRESS_BODY, body: 'request' },
          }), { message, limit: MAX_EGRESS_BODY }, 'egress refused: message too large');
        }
        return;
      }
      const body = result.body;
      const ctOrigin = originOf(rpcUrl);
      const login = leaf(body, LOGIN);
      const logFields = { ...base, message, login: login === undefined ? undefined : shortHash(login), ctid: leaf(body, CTID)?.slice(0, 40), bytesIn: body.length };
      const done = (fields: Record<string, unknown>, msg: string, warn = false, answer?: RelayEgressRecord['answer']): void => {
        opts.inspect?.({
          requestId, tunnel, message, agentId: agent.agentId, ctOrigin, start, body, answer,
          status: typeof fields.status === 'number' ? fields.status : 0,
          ...(typeof fields.code === 'string' ? { code: fields.code } : {}),
        });
        const line = { ...logFields, ...fields, durationMs: Math.round((performance.now() - start) * 10) / 10 };
        if (warn) log.warn(line, msg);
        else log.info(line, msg);
      };
      forward(rpcUrl, message, body, timeoutMs, (outcome) => {
        if ('error' in outcome) {
          const problem = describeNetworkError(outcome.error, timeoutMs, outcome.timedOut);
          count({ tunnel, message, status: 'unreachable' });
          done({ code: 'CTB_CT_UNREACHABLE', ct: ctOrigin, reason: problem }, 'client tracker message failed', true);
          ex.reset(new CtbridgeError('CTB_CT_UNREACHABLE', `the relay could not reach Client Tracker at ${ctOrigin}: ${problem}`, { params: { ctOrigin, problem } }));
          return;
        }
        if ('tooLarge' in outcome) {
          count({ tunnel, message, status: 'too-large' });
          done({ code: 'CTB_CT_UNREACHABLE', ct: ctOrigin, status: outcome.status }, "client tracker's answer too large", true);
          const problem = `its answer is larger than ${MAX_CT_ANSWER} bytes`;
          ex.reset(new CtbridgeError('CTB_CT_UNREACHABLE', `Client Tracker at ${ctOrigin}: ${problem}`, { params: { ctOrigin, problem } }));
          return;
        }
        count({ tunnel, message, status: String(outcome.status) });
        done({ status: outcome.status, bytesOut: outcome.body.length }, 'client tracker message', false, { contentType: outcome.contentType, body: outcome.body });
        const headers = ['Content-Length', String(outcome.body.length), 'X-Ctbridge-Request-Id', requestId];
        if (outcome.contentType !== undefined) headers.push('Content-Type', outcome.contentType);
        ex.respond({ status: outcome.status, headers }, outcome.body.length === 0);
        if (outcome.body.length > 0) {
          ex.send(outcome.body);
          ex.end();
        }
      });
    });
  }) as EgressHandler;
  handler.close = () => {
    for (const ex of open) ex.reset(new CtbridgeError('CTB_SHUTTING_DOWN', 'the relay is shutting down'));
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
      if (result.ok) finish({ status, contentType: firstValue(ctRes.headers['content-type']), body: result.body });
      else if (result.tooLarge) {
        ctRes.destroy();
        finish({ tooLarge: true, status });
      } else finish({ error: result.error, timedOut });
    });
  });
  ctReq.end(body);
}
