/**
 * A relay's `Retry-After` on a refused agent handshake (503 CTB_RELAY_BUSY
 * during a reconnect storm, CTB_SHUTTING_DOWN): the delay before the next
 * dial, in ms, spread over [0.5, 1.5) of it so that thousands of agents
 * turned away in the same second do not come back in the same second.
 * Only delta-seconds from 0 to 60 are taken; anything else (an HTTP date,
 * a proxy's odd value) leaves the agent's own backoff in charge.
 */
import { firstValue } from './headers.js';

const MAX_RETRY_AFTER_S = 60;

export function retryAfterDelayMs(value: string | string[] | undefined, random: () => number = Math.random): number | undefined {
  const text = firstValue(value);
  if (text === undefined || !/^\s*\d{1,3}\s*$/.test(text)) return undefined;
  const seconds = Number(text);
  if (seconds > MAX_RETRY_AFTER_S) return undefined;
  return Math.round(seconds * 1000 * (0.5 + random()));
}
