/**
 * The one place that answers a link handshake (an agent's or another relay
 * node's WebSocket upgrade) that is refused before any WebSocket exists:
 * the status of the error's code, a JSON body with the code and a plain
 * sentence, `Connection: close`. Refusals after the upgrade are WebSocket
 * closes with a code and reason (src/protocol.ts CloseCode). The caller
 * logs the refusal with the remote address; nothing secret goes in the body.
 * `readRefusal` is the dialing side's reading of it.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { untrusted } from '../src/log-text.js';
import type { CtbridgeError } from '../src/errors.js';
import { ERROR_HEADER } from '../src/protocol.js';
import { rawHead } from './raw-response.js';

/**
 * `retryAfterS`: for CTB_RELAY_BUSY, the seconds the agent is asked to wait
 * (relay/handshake-gate.ts computes them from the relay's admission rate).
 */
export function refuseHandshake(socket: Duplex, err: CtbridgeError, retryAfterS?: number): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: err.code, message: err.userMessage } });
  const headers = [
    'Connection', 'close',
    'Content-Type', 'application/json; charset=utf-8',
    'Content-Length', String(Buffer.byteLength(body)),
    'Cache-Control', 'no-store',
    ERROR_HEADER, err.code,
  ];
  if (err.code === 'CTB_SHUTTING_DOWN') headers.push('Retry-After', '1');
  // A reconnect storm: the agent waits about this long (it adds its own jitter), not its growing backoff.
  if (err.code === 'CTB_RELAY_BUSY') headers.push('Retry-After', String(retryAfterS ?? 1));
  socket.end(rawHead(err.status, undefined, headers) + body);
}

/** The other side's reading of such a refusal: its `error.message`, cleaned for a log line (undefined if none). */
export function readRefusal(res: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    res.on('error', () => resolve(undefined));
    res.on('end', () => {
      try {
        resolve(untrusted((JSON.parse(body) as { error?: { message?: unknown } }).error?.message));
      } catch {
        resolve(undefined);
      }
    });
  });
}
