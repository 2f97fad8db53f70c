/**
 * Responses the bridge itself generates (as opposed to the target's): a JSON
 * body in the shape a UC web service uses for the same conditions, the
 * `X-Ctbridge-Error` header with the stable code, and the status from the
 * table in src/errors.ts.
 *
 * A public caller learns the code, one plain sentence (public-message.ts)
 * and the request id: never the error's own message, which names intranet
 * targets, agent ids or config keys and goes to the log line with that id.
 * The answer may be read by a page of any origin (`Access-Control-Allow-
 * Origin: *`, no credentials), so a browser shows "the agent is not
 * connected" rather than "Failed to fetch".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CtbridgeError, ERROR_CODES } from '../errors.js';
import { untrusted } from '../log-text.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../protocol.js';
import { publicMessage } from './public-message.js';

export interface ErrorBody {
  error: {
    /** Short machine-friendly detail: the UC web service's wording where it has one ("agent not connected here: [cioc]"), else the code. */
    details: string;
    _type: 'CtbridgeError';
    code: string;
    /** One plain sentence: what failed and what the caller can do. */
    message: string;
    /** The X-Ctbridge-Request-Id of this answer: the operator finds the details under it in the log. */
    requestId?: string;
  };
}

export function errorBody(err: CtbridgeError, requestId?: string, details: string = err.code): ErrorBody {
  return { error: { details, _type: 'CtbridgeError', code: err.code, message: publicMessage(err), ...(requestId ? { requestId } : {}) } };
}

/** Fields that let a page of any origin read a relay error (no credentials: `*` forbids them). */
export const PUBLIC_ERROR_CORS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'X-Ctbridge-Error, X-Ctbridge-Request-Id, Retry-After',
};

export interface SendErrorOptions {
  requestId?: string;
  details?: string;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
}

/** Answers with the error unless the response already started; then it can only be cut. */
export function sendError(res: ServerResponse, err: CtbridgeError, options: SendErrorOptions = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err, options.requestId, options.details));
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...PUBLIC_ERROR_CORS,
    [ERROR_HEADER]: err.code,
    ...options.headers,
  };
  if (options.requestId) headers[REQUEST_ID_HEADER] = options.requestId;
  res.writeHead(ERROR_CODES[err.code].status, headers);
  res.end(body);
}

/** What the other side of a refusal reads of its JSON error body (each field untrusted and capped). */
export interface RefusalBody {
  code?: string;
  message?: string;
  requestId?: string;
}

/** The code, sentence and request id of an error body, or undefined when `text` is not one. */
export function parseErrorBody(text: string): RefusalBody | undefined {
  let error: unknown;
  try {
    error = (JSON.parse(text) as { error?: unknown } | null)?.error;
  } catch {
    return undefined;
  }
  if (!error || typeof error !== 'object') return undefined;
  const { code, message, requestId } = error as Record<string, unknown>;
  const out: RefusalBody = {};
  if (typeof code === 'string') out.code = untrusted(code, 40);
  if (typeof message === 'string') out.message = untrusted(message, 500);
  if (typeof requestId === 'string') out.requestId = untrusted(requestId, 40);
  return out.code || out.message ? out : undefined;
}

/** One line for a log: `CTB_RELAY_BUSY: <sentence> (request id <id>)`, from what the body holds. */
export function refusalText(body: RefusalBody): string {
  const head = [body.code, body.message].filter(Boolean).join(': ');
  return body.requestId ? `${head} (request id ${body.requestId})` : head;
}

/** How long the dialing side reads a refusal's body (a hostile peer may never end it), and how much of it. */
export const REFUSAL_BODY_MS = 1000;
const MAX_REFUSAL_BODY = 4096;

/**
 * The code, sentence and request id of a refusal's JSON error body, if it
 * has one: what an agent dialing a relay, and a relay node dialing another,
 * read of a refused upgrade. At most 4 KiB for at most `ms`; then the
 * response is dropped.
 */
export function readErrorReason(res: IncomingMessage, done: (refusal: RefusalBody | undefined) => void, ms = REFUSAL_BODY_MS): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    res.destroy();
    done(parseErrorBody(Buffer.concat(chunks).subarray(0, MAX_REFUSAL_BODY).toString('utf8')));
  };
  const timer = setTimeout(finish, ms);
  res.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_REFUSAL_BODY) finish();
  });
  res.once('end', finish);
  res.once('error', finish);
  res.once('close', finish);
}
