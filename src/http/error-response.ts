/**
 * Responses the bridge itself generates (as opposed to the target's): a JSON
 * body in the shape a UC web service uses for the same conditions, the
 * `X-Ctbridge-Error` header with the stable code, and the status from the
 * table in src/errors.ts.
 */
import type { ServerResponse } from 'node:http';
import { CtbridgeError, ERROR_CODES } from '../errors.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../protocol.js';

export interface ErrorBody {
  error: {
    /** Short machine-friendly detail, e.g. "agent not connected here: [cioc]". */
    details: string;
    _type: 'CtbridgeError';
    code: string;
    /** What failed, where, and what to do. */
    message: string;
  };
}

export function errorBody(err: CtbridgeError, details = err.message): ErrorBody {
  return { error: { details, _type: 'CtbridgeError', code: err.code, message: err.userMessage } };
}

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
  const body = JSON.stringify(errorBody(err, options.details));
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [ERROR_HEADER]: err.code,
    ...options.headers,
  };
  if (options.requestId) headers[REQUEST_ID_HEADER] = options.requestId;
  res.writeHead(ERROR_CODES[err.code].status, headers);
  res.end(body);
}
