/**
 * An error response written straight to a connection, for the cases with no
 * ServerResponse to hand (a failed WebSocket upgrade, a request the HTTP
 * parser rejected). Same body and headers as src/http/error-response.ts.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, type CtbridgeError } from '../src/errors.js';
import { errorBody } from '../src/http/error-response.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../src/protocol.js';

/** Writes the response and half-closes; the peer closes the rest. */
export function writeRawError(socket: Duplex, err: CtbridgeError, requestId?: string): number {
  if (socket.destroyed || !socket.writable) return 0;
  const body = JSON.stringify(errorBody(err));
  const status = ERROR_CODES[err.code].status;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    `${ERROR_HEADER}: ${err.code}`,
    ...(requestId ? [`${REQUEST_ID_HEADER}: ${requestId}`] : []),
    'connection: close',
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  return Buffer.byteLength(body);
}
