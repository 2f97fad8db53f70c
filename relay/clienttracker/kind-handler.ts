/**
 * The `clienttracker` tunnel kind (relay/tunnel-kind.ts): the relay acts as
 * a Client Tracker bridge for the provider behind the tunnel.
 *
 * - Bridge errors become `<response><error>…</error></response>` in words a
 *   CT user can act on (error-text.ts, from the error's code and params),
 *   with HTTP status `clientTracker.errorStatus` (default 200: providers
 *   answer errors that way, and CT shows the text only then) and the code
 *   in X-Ctbridge-Error. Errors from the agent arrive as data (a RESET with
 *   code and params) and are shown the same way.
 * - The provider's answer is read whole (capped), the registration's
 *   server-called URLs are rewritten to the relay, and the answer is checked
 *   in the tunnel's validation mode (answer.ts).
 */
import type { ServerResponse } from 'node:http';
import type { ClientTrackerConfig, RelayTunnelConfig } from '../../src/config/relay-tunnels.js';
import { CtbridgeError } from '../../src/errors.js';
import { getHeader } from '../../src/http/headers.js';
import type { Logger } from '../../src/log.js';
import type { Exchange } from '../../src/mux/exchange.js';
import type { ResponseHead } from '../../src/mux/heads.js';
import { redactUrl } from '../../src/redact.js';
import { loadSchemas } from '../../src/xml/validate.js';
import { callerHeaders, streamBody, writeHead } from '../http-kind.js';
import type { ExchangeContext, KindHandler } from '../tunnel-kind.js';
import { processAnswer, type AnswerOutcome, type Finding } from './answer.js';
import { collectExchange, decodeBody } from './body.js';
import { answerSummary } from './summary.js';
import { CT_METRICS, type ClientTrackerMetrics } from './metrics.js';
import { errorText, type ErrorTextParams } from './error-text.js';
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
const BODY_HEADERS = ['content-encoding', 'content-md5', 'digest', 'etag', 'last-modified'];
const MAX_LOGGED_ISSUES = 5;

function noBody(method: string, status: number): boolean {
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
    ctx.code = code;
    count(CT_METRICS.errors, { code });
    writeXmlError(res, { status: ct.errorStatus, code, text: errorText(code, params), requestId: ctx.requestId });
  };

  const sendError = (res: ServerResponse, err: CtbridgeError, ctx: ExchangeContext): void => {
    answerError(res, ctx, err.code, { tunnel: ctx.tunnel || tunnel.name, ...err.params });
  };

  const logFinding = (f: Finding, ctx: ExchangeContext, head: ResponseHead, replaced: boolean): void => {
    count(CT_METRICS.answerProblems, { reason: f.reason, mode: ct.validation });
    log.warn(
      {
        requestId: ctx.requestId,
        tunnel: tunnel.name,
        path: redactUrl(ctx.url),
        status: head.status,
        contentType: getHeader(head.headers, 'content-type'),
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

  /** The provider's answer (or the changed body) with the caller's headers. */
  const send = (ex: Exchange, res: ServerResponse, head: ResponseHead, ctx: ExchangeContext, body: Buffer, changed: boolean): void => {
    if (res.headersSent || res.destroyed) return;
    const headers = callerHeaders(head.headers, ctx.requestId, changed ? [...BODY_HEADERS, 'content-length'] : ['content-length']);
    headers.push('Content-Length', String(body.length));
    const failed = writeHead(res, head.status, head.statusText, headers);
    if (failed) {
      ex.reset(failed);
      answerError(res, ctx, failed.code, { tunnel: tunnel.name });
      return;
    }
    res.end(body);
  };

  const respond = (ex: Exchange, head: ResponseHead, res: ServerResponse, ctx: ExchangeContext): void => {
    const status = head.status;
    if (noBody(ctx.method, status)) {
      const failed = writeHead(res, status, head.statusText, callerHeaders(head.headers, ctx.requestId));
      if (failed) {
        ex.reset(failed);
        answerError(res, ctx, failed.code, { tunnel: tunnel.name });
      } else streamBody(ex, res, head);
      return;
    }
    collectExchange(ex, maxAnswer, (result) => {
      if (res.headersSent || res.destroyed) return;
      if (!result.ok) {
        if (result.tooLarge) {
          log.warn({ requestId: ctx.requestId, tunnel: tunnel.name, path: redactUrl(ctx.url), limit: maxAnswer }, "provider's answer is larger than the limit");
          ex.reset(new CtbridgeError('CTB_BODY_TOO_LARGE', `the provider's answer is larger than ${maxAnswer} bytes`, { params: { bytes: maxAnswer, body: 'answer' } }));
          answerError(res, ctx, 'CTB_BODY_TOO_LARGE', { tunnel: tunnel.name, bytes: maxAnswer, body: 'answer' });
        }
        // A reset (agent gone, timeout) is answered by the request handler.
        return;
      }
      const raw = result.body;
      decodeBody(raw, getHeader(head.headers, 'content-encoding'), maxAnswer, (decoded) => {
        if (res.headersSent || res.destroyed) return;
        const contentType = getHeader(head.headers, 'content-type');
        if (!decoded.ok) {
          if (decoded.tooLarge) {
            answerError(res, ctx, 'CTB_BODY_TOO_LARGE', { tunnel: tunnel.name, bytes: maxAnswer, body: 'answer' });
            return;
          }
          const replace = ct.validation === 'enforce';
          ctx.ct = { message: 'not a Client Tracker message', validation: 'not xml', firstError: `the answer ${decoded.reason}` };
          if (ct.validation !== 'off') {
            logFinding({ reason: 'not-xml', issues: [{ line: 1, message: `the answer ${decoded.reason}` }], detail: decoded.reason }, ctx, head, replace);
          }
          if (replace) answerError(res, ctx, 'CTB_UPSTREAM_INVALID', { tunnel: tunnel.name, status, contentType, problem: `the answer ${decoded.reason}` });
          else send(ex, res, head, ctx, raw, false);
          return;
        }
        let outcome: AnswerOutcome;
        try {
          outcome = processAnswer({ body: decoded.body, mode: ct.validation, rewrite: ct.rewrite, publicBase: opts.publicUrlFor(tunnel.name) });
        } catch (err) {
          // A validator failure is the bridge's problem, not the provider's: pass the answer on.
          log.error({ requestId: ctx.requestId, tunnel: tunnel.name, err }, 'checking the provider answer failed; passed through unchecked');
          send(ex, res, head, ctx, raw, false);
          return;
        }
        ctx.ct = answerSummary(outcome, decoded.body, ct.validation);
        logRewrite(outcome, ctx);
        const replaced = outcome.replace !== undefined;
        for (const f of outcome.findings) logFinding(f, ctx, head, replaced && f.reason !== 'namespace-quirk');
        if (outcome.replace) {
          const params: ErrorTextParams = { tunnel: tunnel.name, status, contentType };
          if (outcome.replace.problem !== undefined) params.problem = outcome.replace.problem;
          answerError(res, ctx, 'CTB_UPSTREAM_INVALID', params);
        } else if (outcome.body) send(ex, res, head, ctx, outcome.body, true);
        else send(ex, res, head, ctx, raw, false);
      });
    });
  };

  return { respond, sendError };
}
