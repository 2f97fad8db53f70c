/**
 * The `clienttracker` tunnel kind (relay/tunnel-kind.ts): the relay acts as
 * a Client Tracker bridge for the provider behind the tunnel.
 *
 * - Bridge errors become `<response><error>…</error></response>` in words a
 *   CT user can act on (error-text.ts), with HTTP status
 *   `clientTracker.errorStatus` (default 200: providers answer errors that
 *   way, and CT shows the text only then) and the code in X-Ctbridge-Error.
 * - The provider's answer is read whole (capped), the registration's
 *   server-called URLs are rewritten to the relay, and the answer is checked
 *   in the tunnel's validation mode (answer.ts).
 * - An error the agent itself answered (X-Ctbridge-Error + JSON body, e.g.
 *   target refused) is turned into the XML error for its code.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ClientTrackerConfig, RelayTunnelConfig } from '../../src/config/relay-tunnels.js';
import type { CtbridgeError } from '../../src/errors.js';
import { stripHopByHop } from '../../src/http/hop-by-hop.js';
import type { Logger } from '../../src/log.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../../src/protocol.js';
import { redactUrl } from '../../src/redact.js';
import { loadSchemas } from '../../src/xml/validate.js';
import type { ExchangeContext, KindHandler } from '../tunnel-kind.js';
import { processAnswer, type AnswerOutcome, type Finding } from './answer.js';
import { collectBody, decodeBody, header } from './body.js';
import { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';
import { errorText, isErrorCode, paramsFromError, type ErrorTextParams } from './error-text.js';
import { writeXmlError } from './xml-error.js';

export interface ClientTrackerHandlerOptions {
  /** The tunnel's public URL (`<publicUrl>/t/<tunnel>/`); asked per answer, since it is final only once the relay listens. */
  publicUrlFor(tunnel: string): string;
  log: Logger;
  metrics?: ClientTrackerMetrics;
  /** relay.yaml `limits.maxResponseBody`; 0 or absent means DEFAULT_MAX_ANSWER for this kind. */
  maxResponseBody?: number;
}

/**
 * Cap on a provider's answer when `limits.maxResponseBody` is 0 (unlimited):
 * a clienttracker answer is held in memory whole to be rewritten and
 * validated, and real answers are a few KiB, so "unlimited" means 10 MiB here.
 */
export const DEFAULT_MAX_ANSWER = 10 * 1024 * 1024;

const DEFAULT_CT: ClientTrackerConfig = {
  rpcUrl: '',
  rewrite: ['resourceInfoURL', 'resourceTaxonomyInfoURL'],
  validation: 'report',
  errorStatus: 200,
};

/** Headers that describe the provider's exact bytes; dropped when the body changes. */
const BODY_HEADERS = ['content-length', 'content-encoding', 'content-md5', 'digest', 'etag', 'last-modified'];
const MAX_LOGGED_ISSUES = 5;

function noBody(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || status < 200 || status === 204 || status === 304;
}

export function createClientTrackerHandler(tunnel: RelayTunnelConfig, opts: ClientTrackerHandlerOptions): KindHandler {
  const ct = tunnel.clientTracker ?? DEFAULT_CT;
  const maxAnswer = opts.maxResponseBody && opts.maxResponseBody > 0 ? opts.maxResponseBody : DEFAULT_MAX_ANSWER;
  const { log, metrics } = opts;
  // Compile the schemas now, so a broken schema shows at startup and the first answer is not slow.
  if (ct.validation !== 'off') loadSchemas();

  const count = (name: string, labels: Record<string, string>): void => metrics?.increment(name, { tunnel: tunnel.name, ...labels });

  /** The XML error for `code`, marked for the request log line. */
  const answerError = (res: ServerResponse, ctx: ExchangeContext, code: string, params: ErrorTextParams): void => {
    (res as ServerResponse & { ctbError?: string }).ctbError = code;
    count(CT_METRICS.errors, { code });
    writeXmlError(res, { status: ct.errorStatus, code, text: errorText(code, params), requestId: ctx.requestId });
  };

  const sendError = (res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext): void => {
    const params = paramsFromError(err, ctx.tunnel || tunnel.name);
    if (params.seconds === undefined) {
      // The request handler's timeouts are this tunnel's.
      if (err.code === 'CTB_REQUEST_TIMEOUT') params.seconds = tunnel.timeouts.request / 1000;
      if (err.code === 'CTB_TARGET_TIMEOUT') params.seconds = tunnel.timeouts.idle / 1000;
    }
    answerError(res, ctx, err.code, params);
  };

  const logFindings = (outcome: AnswerOutcome, ctx: ExchangeContext, proxyRes: IncomingMessage, replaced: boolean): void => {
    for (const f of outcome.findings) logFinding(f, ctx, proxyRes, replaced && f.reason !== 'namespace-quirk');
  };

  const logFinding = (f: Finding, ctx: ExchangeContext, proxyRes: IncomingMessage, replaced: boolean): void => {
    count(CT_METRICS.answerProblems, { reason: f.reason, mode: ct.validation });
    log.warn(
      {
        requestId: ctx.requestId,
        tunnel: tunnel.name,
        path: redactUrl(ctx.url),
        status: proxyRes.statusCode,
        contentType: header(proxyRes.headers['content-type']),
        kind: f.kind,
        reason: f.reason,
        detail: f.detail,
        mode: ct.validation,
        action: replaced ? 'replaced with an XML error' : 'passed through',
        issues: f.issues.slice(0, MAX_LOGGED_ISSUES),
        moreIssues: f.issues.length > MAX_LOGGED_ISSUES ? f.issues.length - MAX_LOGGED_ISSUES : undefined,
      },
      f.reason === 'not-xml' ? 'provider answer is not Client Tracker XML' : 'provider answer violates the schema',
    );
  };

  const logRewrite = (outcome: AnswerOutcome, ctx: ExchangeContext): void => {
    const r = outcome.rewrite;
    if (outcome.rewriteSkipped !== undefined) {
      log.warn({ requestId: ctx.requestId, tunnel: tunnel.name, reason: outcome.rewriteSkipped }, 'registration URLs not rewritten');
    }
    if (!r) return;
    if (r.rewritten.length > 0) count(CT_METRICS.rewrites, {});
    const fields = {
      requestId: ctx.requestId,
      tunnel: tunnel.name,
      rewritten: r.rewritten.map((x) => ({ element: x.element, from: redactUrl(x.from), to: redactUrl(x.to) })),
      skipped: r.skipped.length ? r.skipped.map((x, i) => ({ element: x.element, url: redactUrl(x.url), reason: r.reasons[i] })) : undefined,
    };
    if (r.skipped.length > 0) log.warn(fields, 'registration URLs rewritten, some left as they were');
    else log.info(fields, 'registration URLs rewritten');
  };

  const copyHeaders = (proxyRes: IncomingMessage, ctx: ExchangeContext, changed: boolean, length: number | undefined): OutgoingHttpHeaders => {
    const headers: OutgoingHttpHeaders & IncomingMessage['headers'] = { ...proxyRes.headers };
    stripHopByHop(headers);
    delete headers[REQUEST_ID_HEADER];
    if (changed) for (const name of BODY_HEADERS) delete headers[name];
    if (length !== undefined) headers['content-length'] = String(length);
    headers[REQUEST_ID_HEADER] = ctx.requestId;
    return headers;
  };

  const send = (res: ServerResponse, proxyRes: IncomingMessage, ctx: ExchangeContext, body: Buffer, changed: boolean): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, copyHeaders(proxyRes, ctx, changed, body.length));
    res.end(body);
  };

  const agentError = (res: ServerResponse, ctx: ExchangeContext, headerCode: string, body: Buffer): void => {
    let message = '';
    let jsonCode: string | undefined;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
      if (typeof parsed.error?.message === 'string') message = parsed.error.message;
      else if (typeof parsed.error?.details === 'string') message = parsed.error.details;
      if (typeof parsed.error?.code === 'string') jsonCode = parsed.error.code;
    } catch {
      // Not JSON: the header's code is enough.
    }
    const code = isErrorCode(headerCode) || !jsonCode ? headerCode : jsonCode;
    log.info(
      { requestId: ctx.requestId, tunnel: tunnel.name, path: redactUrl(ctx.url), code, agentMessage: redactUrl(message.slice(0, 300)) },
      'agent answered an error; shown to Client Tracker as XML',
    );
    answerError(res, ctx, code, paramsFromError({ code, message }, tunnel.name));
  };

  const handleResponse = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse, ctx: ExchangeContext): void => {
    const status = proxyRes.statusCode ?? 502;
    const agentCode = header(proxyRes.headers[ERROR_HEADER]);
    if (!agentCode && noBody(req.method, status)) {
      res.writeHead(status, proxyRes.statusMessage, copyHeaders(proxyRes, ctx, false, undefined));
      proxyRes.pipe(res);
      return;
    }

    let settled = false;
    const abandon = (): void => {
      stop();
      proxyRes.destroy();
    };
    const respondable = (): boolean => {
      settled = true;
      if (res.headersSent || res.writableEnded || res.destroyed) {
        // The request handler already answered (request timeout) or the caller left.
        abandon();
        return false;
      }
      return true;
    };
    res.once('close', () => {
      if (!settled) {
        settled = true;
        abandon();
      }
    });

    const tooLarge = (): void => {
      log.warn({ requestId: ctx.requestId, tunnel: tunnel.name, path: redactUrl(ctx.url), limit: maxAnswer }, "provider's answer is larger than the limit");
      answerError(res, ctx, 'CTB_BODY_TOO_LARGE', { tunnel: tunnel.name, bytes: maxAnswer, body: 'answer' });
      proxyRes.destroy();
    };

    const stop = collectBody(proxyRes, maxAnswer, (result) => {
      if (!respondable()) return;
      if (!result.ok) {
        if (result.tooLarge) tooLarge();
        else {
          log.warn({ requestId: ctx.requestId, tunnel: tunnel.name, err: result.error }, "provider's answer was cut off");
          answerError(res, ctx, 'CTB_AGENT_DISCONNECTED', { tunnel: tunnel.name });
        }
        return;
      }
      const raw = result.body;
      if (agentCode) {
        agentError(res, ctx, agentCode, raw);
        return;
      }
      decodeBody(raw, header(proxyRes.headers['content-encoding']), maxAnswer, (decoded) => {
        if (res.headersSent || res.destroyed) return;
        const contentType = header(proxyRes.headers['content-type']);
        if (!decoded.ok) {
          if (decoded.tooLarge) return tooLarge();
          const replace = ct.validation === 'enforce';
          if (ct.validation !== 'off') {
            logFinding({ reason: 'not-xml', issues: [{ line: 1, message: `the answer ${decoded.reason}` }], detail: decoded.reason }, ctx, proxyRes, replace);
          }
          if (replace) answerError(res, ctx, 'CTB_UPSTREAM_INVALID', { tunnel: tunnel.name, status, contentType, problem: `the answer ${decoded.reason}` });
          else send(res, proxyRes, ctx, raw, false);
          return;
        }
        let outcome: AnswerOutcome;
        try {
          outcome = processAnswer({ body: decoded.body, mode: ct.validation, rewrite: ct.rewrite, publicBase: opts.publicUrlFor(tunnel.name) });
        } catch (err) {
          // A validator failure is the bridge's problem, not the provider's: pass the answer on.
          log.error({ requestId: ctx.requestId, tunnel: tunnel.name, err }, 'checking the provider answer failed; passed through unchecked');
          send(res, proxyRes, ctx, raw, false);
          return;
        }
        logRewrite(outcome, ctx);
        logFindings(outcome, ctx, proxyRes, outcome.replace !== undefined);
        if (outcome.replace) {
          const params: ErrorTextParams = { tunnel: tunnel.name, status, contentType };
          if (outcome.replace.problem !== undefined) params.problem = outcome.replace.problem;
          answerError(res, ctx, 'CTB_UPSTREAM_INVALID', params);
        } else if (outcome.body) send(res, proxyRes, ctx, outcome.body, true);
        else send(res, proxyRes, ctx, raw, false);
      });
    });
  };

  return { selfHandleResponse: true, handleResponse, sendError };
}
