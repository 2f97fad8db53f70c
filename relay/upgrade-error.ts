import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CtbridgeError } from '../src/errors.js';
import { errorBody } from '../src/http/error-response.js';
import { ERROR_HEADER, REQUEST_ID_HEADER } from '../src/protocol.js';

/** Answers a refused WebSocket upgrade with a plain HTTP error on the raw socket. */
export function writeUpgradeError(socket: Duplex, err: CtbridgeError, requestId: string): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorBody(err));
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${ERROR_HEADER}: ${err.code}\r\n${REQUEST_ID_HEADER}: ${requestId}\r\n\r\n${body}`,
  );
}
