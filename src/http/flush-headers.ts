import type { ServerResponse } from 'node:http';

/**
 * A proxied response's headers go out with its first body bytes. When the
 * target sent its headers but holds the body (long-poll, event stream), send
 * the headers on after one event-loop turn, so the caller sees them as the
 * target meant; a response whose body is already there still leaves in one
 * write.
 */
export function flushHeadersIfIdle(res: ServerResponse): void {
  setImmediate(() => {
    if (!res.headersSent && !res.destroyed) res.flushHeaders();
  });
}
