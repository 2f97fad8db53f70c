/**
 * Request ids, shared by relay and agent log lines and the
 * `X-Ctbridge-Request-Id` header: an optional one-letter kind (`e` for
 * agent egress messages), a random per-process prefix and a counter, 16 hex
 * digits in all; unique across restarts and processes without a
 * getrandom() call per request.
 */
import { randomBytes } from 'node:crypto';

const PREFIX = randomBytes(4).toString('hex');
let counter = 0;

export function nextRequestId(kind = ''): string {
  counter = (counter + 1) >>> 0;
  return kind + PREFIX + counter.toString(16).padStart(8, '0');
}
