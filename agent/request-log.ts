/**
 * One request through a tunnel as the agent sees it, and the single log
 * line it ends with. The line never holds headers, and the path goes
 * through redactUrl (secret query values masked).
 */
import type { Logger } from '../src/log.js';
import type { RequestHead } from '../src/mux/heads.js';
import { redactUrl } from '../src/redact.js';

export interface RequestEntry {
  requestId: string;
  tunnel: string;
  method: string;
  /** The target as the relay sent it (before the target's base path). */
  path: string;
  start: number;
  status: number;
  bytesIn: number;
  bytesOut: number;
  upgrade: boolean;
  code?: string;
  /** When the target's response head arrived (performance.now()). */
  headersAt?: number;
}

export function newEntry(head: RequestHead): RequestEntry {
  return {
    requestId: head.requestId,
    tunnel: head.tunnel,
    method: head.method,
    path: head.target,
    start: performance.now(),
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    upgrade: head.kind === 'upgrade',
  };
}

/** The one info line per request (msg "request"); `aborted` when the exchange did not complete. */
export function logRequest(log: Logger, e: RequestEntry, aborted: boolean): void {
  if (!log.isLevelEnabled('info')) return;
  log.info({
    requestId: e.requestId,
    tunnel: e.tunnel,
    method: e.method,
    path: redactUrl(e.path),
    status: e.status,
    bytesIn: e.bytesIn,
    bytesOut: e.bytesOut,
    durationMs: Math.round((performance.now() - e.start) * 10) / 10,
    ...(e.upgrade ? { upgrade: true } : {}),
    ...(e.code ? { code: e.code } : {}),
    ...(aborted ? { aborted: true } : {}),
  }, 'request');
}
