/**
 * The reason in a relay's refusal: a ctbridge relay answers a refused
 * WebSocket upgrade with a JSON error body (src/http/error-response.ts);
 * the agent reads a little of it for its log line.
 */
import type { IncomingMessage } from 'node:http';
import { ERROR_BODY_MS } from './relay-timeouts.js';

const MAX_ERROR_BODY = 4096;

/** error.message from a JSON error body, if the response has one (at most 4 KiB read, for at most ERROR_BODY_MS). */
export function readErrorReason(res: IncomingMessage, done: (reason: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    res.destroy();
    let reason: string | undefined;
    try {
      const message: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.error?.message;
      if (typeof message === 'string') reason = message.slice(0, 500);
    } catch {
      // not a ctbridge error body
    }
    done(reason);
  };
  const timer = setTimeout(finish, ERROR_BODY_MS);
  res.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_ERROR_BODY) finish();
  });
  res.once('end', finish);
  res.once('error', finish);
  res.once('close', finish);
}
