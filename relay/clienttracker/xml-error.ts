/**
 * Bridge errors in the form Client Tracker can show:
 * `<response><error>TEXT</error></response>`, with the stable code in
 * `X-Ctbridge-Error` for monitoring, readable by a page of any origin
 * (src/http/error-response.ts).
 */
import type { ServerResponse } from 'node:http';
import { PUBLIC_ERROR_CORS } from '../../src/http/error-response.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../../src/protocol.js';
import { XML_CONTENT_TYPE } from '../../src/xml/kinds.js';
import { buildErrorResponse } from '../../src/xml/response.js';

export interface XmlErrorOptions {
  status: number;
  code: string;
  text: string;
  requestId?: string;
  headers?: Record<string, string>;
}

/** Answers with the XML error unless the response already started; then it can only be cut. */
export function writeXmlError(res: ServerResponse, options: XmlErrorOptions): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = buildErrorResponse(options.text);
  const headers: Record<string, string | number> = {
    'content-type': XML_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...PUBLIC_ERROR_CORS,
    [ERROR_HEADER]: options.code,
    ...options.headers,
  };
  if (options.requestId) headers[REQUEST_ID_HEADER] = options.requestId;
  // Headers set earlier on `res` (e.g. Retry-After) are kept; a stale length or encoding is not.
  for (const name of ['content-length', 'content-encoding', 'transfer-encoding', 'etag', 'last-modified']) res.removeHeader(name);
  res.writeHead(options.status, headers);
  res.end(body);
}
