/**
 * One request through a tunnel as the agent sees it: what it is, how far it
 * got, and the single log line it ends with. The line never holds headers,
 * and the path goes through redactUrl (secret query values masked).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CtbridgeError, type ErrorCode } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { REQUEST_ID_HEADER } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import { checkPath } from './allow-paths.js';
import type { TunnelTarget } from './target-tunnels.js';

export interface Exchange {
  target: TunnelTarget;
  requestId: string | undefined;
  method: string;
  /** The path as the relay sent it (before the target's base path). */
  path: string;
  start: number;
  bytesIn: number;
  bytesOut: number;
  /** proxy.web/ws was called: the target may have been contacted. */
  proxied: boolean;
  proxyReq?: ClientRequest;
  idleTimedOut: boolean;
  responseStarted: boolean;
  /** The agent answered (or cut) the request itself; later proxy errors are moot. */
  answered: boolean;
  code?: ErrorCode;
  timer?: NodeJS.Timeout;
  /** WebSocket upgrades: the status the target (or the agent) answered with. */
  upgradeStatus?: number;
  /** WebSocket upgrades: the tunnel stream, raw after the upgrade. */
  upgradeStream?: Duplex;
}

export function newExchange(req: IncomingMessage, target: TunnelTarget): Exchange {
  const id = req.headers[REQUEST_ID_HEADER];
  return {
    target,
    requestId: typeof id === 'string' ? id : undefined,
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    start: performance.now(),
    bytesIn: 0,
    bytesOut: 0,
    proxied: false,
    idleTimedOut: false,
    responseStarted: false,
    answered: false,
  };
}

/** Why the tunnel's allowPaths refuse this request, or undefined if they allow it. */
export function pathRefusal(ex: Exchange): CtbridgeError | undefined {
  const verdict = checkPath(ex.path, ex.target.config.allowPaths);
  if (verdict === 'allowed') return undefined;
  if (verdict === 'bad-encoding') return new CtbridgeError('CTB_BAD_REQUEST', 'the request path is not valid percent-encoded UTF-8');
  const path = redactUrl(ex.path.replace(/[?#].*$/s, ''));
  return new CtbridgeError('CTB_PATH_NOT_ALLOWED', `path ${path} is not in the allowPaths of tunnel '${ex.target.name}'`);
}

/** The one info line per request (msg "request"). */
export function logExchange(log: Logger, ex: Exchange, status: number, aborted: boolean, upgrade = false): void {
  log.info({
    requestId: ex.requestId,
    tunnel: ex.target.name,
    method: ex.method,
    path: redactUrl(ex.path),
    status,
    ...(upgrade ? { upgrade: true } : { bytesIn: ex.bytesIn, bytesOut: ex.bytesOut }),
    durationMs: Math.round(performance.now() - ex.start),
    ...(ex.code ? { code: ex.code } : {}),
    ...(aborted ? { aborted: true } : {}),
  }, 'request');
}
