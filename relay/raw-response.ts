/**
 * HTTP answers written straight to a connection, for WebSocket upgrades
 * (Node hands the relay the raw socket, with no ServerResponse): the 101 or
 * refusal from the target, and the relay's own JSON errors (the public
 * sentence only: src/http/error-response.ts).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CtbridgeError } from '../src/errors.js';
import { PUBLIC_ERROR_CORS, errorBody } from '../src/http/error-response.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../src/protocol.js';

/** The status line and header block, ending with the empty line. Field values are checked by the caller. */
export function rawHead(status: number, statusText: string | undefined, pairs: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${statusText ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i < pairs.length; i += 2) head += `${pairs[i]}: ${pairs[i + 1]}\r\n`;
  return `${head}\r\n`;
}

export interface RawErrorOptions {
  /** The CORS headers of public answers (a browser page may read the error). */
  cors: boolean;
  /** Seconds for `Retry-After`, when the caller is asked to come back. */
  retryAfterS?: number | undefined;
}

/**
 * Answers a refused upgrade with the JSON error body (the public sentence
 * and the request id) and closes the connection; a connection that can no
 * longer be written is destroyed.
 */
export function endWithRawError(socket: Duplex, err: CtbridgeError, requestId: string, opts: RawErrorOptions): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err, requestId));
  const headers = [
    'Connection', 'close',
    'Content-Type', 'application/json; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Cache-Control', 'no-store',
    ...(opts.cors ? Object.entries(PUBLIC_ERROR_CORS).flat() : []),
    ERROR_HEADER, err.code,
    REQUEST_ID_HEADER, requestId,
  ];
  if (opts.retryAfterS !== undefined) headers.push('Retry-After', String(opts.retryAfterS));
  socket.end(rawHead(err.status, undefined, headers) + body);
}

/** Answers a public caller's refused upgrade (CORS headers; `Retry-After: 1` when the agent is busy or the relay shuts down). */
export function writeRawError(socket: Duplex, err: CtbridgeError, requestId: string): void {
  const retryAfterS = err.code === 'CTB_AGENT_BUSY' || err.code === 'CTB_SHUTTING_DOWN' ? 1 : undefined;
  endWithRawError(socket, err, requestId, { cors: true, retryAfterS });
}
