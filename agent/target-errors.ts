/**
 * Turns a failure to reach a tunnel's target into a CtbridgeError whose
 * message names the tunnel, the target and what to check, with the numbers
 * (seconds) as data. These messages go back to the caller in the JSON error
 * body, so they carry no secrets (the origin never has user-info).
 *
 * undici reports each failure with its own code (UND_ERR_*); TARGET_FAILURES
 * maps every one of them, and Node's socket and TLS errors are mapped after.
 */
import { CtbridgeError, type ErrorCode } from '../src/errors.js';
import { formatDuration } from '../src/config/index.js';
import type { TunnelTarget } from './target-pool.js';

/** Node/OpenSSL certificate verification failures. */
export const TLS_VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** TLS failures that are not about the certificate (protocol mismatch, handshake alert). */
export function isTlsProtocolError(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPROTO' || (err.code === 'ECONNRESET' && /TLS|SSL/i.test(err.message))
    || (err.code?.startsWith('ERR_SSL_') ?? false) || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
}

export interface TargetFailureContext {
  target: TunnelTarget;
  /** The configuration file's name, for hints ("agent.yaml"). */
  file: string;
  /** The target had started answering. */
  responseStarted: boolean;
}

type Failure = (err: NodeJS.ErrnoException, ctx: TargetFailureContext) => CtbridgeError;

const key = (ctx: TargetFailureContext): string => `${ctx.file}'s tunnels.${ctx.target.name}`;
const named = (ctx: TargetFailureContext): string => `${ctx.target.origin} (tunnel '${ctx.target.name}')`;

function fail(code: ErrorCode, message: string, hint: string, err: unknown, seconds?: number): CtbridgeError {
  return new CtbridgeError(code, message, { hint, cause: err, ...(seconds === undefined ? {} : { params: { seconds } }) });
}

const idle = (what: string): Failure => (err, ctx) => {
  const ms = ctx.target.config.timeouts.idle;
  return fail('CTB_TARGET_TIMEOUT', `${named(ctx)} sent nothing for ${formatDuration(ms)} ${what}`,
    `if the service is just slow, raise ${key(ctx)}.timeouts.idle`, err, ms / 1000);
};

const badResponse = (why: string): Failure => (err, ctx) =>
  fail('CTB_TARGET_BAD_RESPONSE', `${named(ctx)} answered with ${why}`, "check the target service's own logs", err);

/** Every undici failure, by code. */
export const TARGET_FAILURES: Readonly<Record<string, Failure>> = {
  UND_ERR_CONNECT_TIMEOUT: (err, ctx) => {
    const ms = ctx.target.config.timeouts.connect;
    return fail('CTB_TARGET_TIMEOUT', `the agent could not connect to ${ctx.target.origin} for tunnel '${ctx.target.name}' within ${formatDuration(ms)}`,
      `check that the host is up and that no firewall drops connections from the agent to it, or raise ${key(ctx)}.timeouts.connect`, err, ms / 1000);
  },
  UND_ERR_HEADERS_TIMEOUT: idle('before its response headers'),
  UND_ERR_BODY_TIMEOUT: idle('in the middle of its response body'),
  UND_ERR_SOCKET: (err, ctx) =>
    fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${ctx.responseStarted ? 'the target closed the connection in the middle of its answer' : 'the target closed the connection without answering'}`,
      "check the target service's own logs", err),
  UND_ERR_HEADERS_OVERFLOW: badResponse('response headers larger than the agent accepts (16 KiB)'),
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: badResponse('a body longer or shorter than its Content-Length'),
  UND_ERR_RES_EXCEEDED_MAX_SIZE: badResponse('a body larger than the agent accepts'),
  UND_ERR_RESPONSE: badResponse('an error response'),
  UND_ERR_INFO: badResponse('an answer the agent could not use'),
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: (err) =>
    new CtbridgeError('CTB_BAD_REQUEST', 'the request body is longer or shorter than its Content-Length', { cause: err }),
  UND_ERR_INVALID_ARG: (err) =>
    new CtbridgeError('CTB_BAD_REQUEST', `the request cannot be sent to the target: ${err.message}`, { cause: err }),
  UND_ERR_NOT_SUPPORTED: (err) =>
    new CtbridgeError('CTB_BAD_REQUEST', `the request cannot be sent to the target: ${err.message}`, { cause: err }),
  UND_ERR_INVALID_RETURN_VALUE: (err) => new CtbridgeError('CTB_PROTOCOL', `internal error in the agent: ${err.message}`, { cause: err }),
  UND_ERR_ABORTED: (err) => new CtbridgeError('CTB_CANCELLED', 'the request was cancelled', { cause: err }),
  UND_ERR_ABORT: (err) => new CtbridgeError('CTB_CANCELLED', 'the request was cancelled', { cause: err }),
  UND_ERR_CLOSED: (err) => new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is shutting down', { cause: err }),
  UND_ERR_DESTROYED: (err) => new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is shutting down', { cause: err }),
  // Proxies, balanced pools and retries: features the agent does not use towards targets.
  UND_ERR_PRX_TLS: (err, ctx) => fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${err.message}`, `check ${key(ctx)}.target`, err),
  UND_ERR_SOCKS5: (err, ctx) => fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${err.message}`, `check ${key(ctx)}.target`, err),
  UND_ERR_BPL_MISSING_UPSTREAM: (err, ctx) => fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${err.message}`, `check ${key(ctx)}.target`, err),
  UND_ERR_REQ_RETRY: (err, ctx) => fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${err.message}`, `check ${key(ctx)}.target`, err),
  UND_ERR_MAX_ORIGINS_REACHED: (err, ctx) => fail('CTB_TARGET_UNREACHABLE', `${named(ctx)}: ${err.message}`, `check ${key(ctx)}.target`, err),
  UND_ERR_WS_MESSAGE_SIZE_EXCEEDED: badResponse('a WebSocket message larger than the agent accepts'),
  UND_ERR: badResponse('an answer the agent could not use'),
};

export function targetError(err: unknown, ctx: TargetFailureContext): CtbridgeError {
  if (err instanceof CtbridgeError) return err;
  const { target } = ctx;
  const e = (err ?? {}) as NodeJS.ErrnoException;
  const mapped = e.code ? TARGET_FAILURES[e.code] : undefined;
  if (mapped) return mapped(e, ctx);
  if (e.code?.startsWith('HPE_')) return badResponse(`something that is not valid HTTP (${e.code})`)(e, ctx);
  const unreachable = (why: string, hint: string): CtbridgeError =>
    fail('CTB_TARGET_UNREACHABLE', `the agent could not connect to ${target.origin} for tunnel '${target.name}': ${why}`, hint, err);
  const checkTarget = `check that the service is running and that ${key(ctx)}.target is right`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return unreachable('connection refused', checkTarget);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable('host name not found (DNS)', `check the host name in ${key(ctx)}.target and the agent machine's DNS`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return unreachable('no route to host', `check ${key(ctx)}.target and the network between the agent and the target`);
    case 'ETIMEDOUT':
      return fail('CTB_TARGET_TIMEOUT', `the agent could not connect to ${target.origin} for tunnel '${target.name}': connection timed out`,
        'check that the host is up and that no firewall drops connections from the agent to it', err);
    case 'ECONNRESET':
    case 'EPIPE':
      if (!isTlsProtocolError(e)) return TARGET_FAILURES.UND_ERR_SOCKET(e, ctx);
  }
  if (e.code && TLS_VERIFY_CODES.has(e.code)) {
    return unreachable(`the target's TLS certificate was not accepted (${e.code})`,
      `set ${key(ctx)}.ca to the CA bundle that signed the target's certificate (or tlsVerify: false for a test system)`);
  }
  if (isTlsProtocolError(e)) {
    return unreachable(`TLS handshake failed (${e.code ?? e.message})`, `check that ${key(ctx)}.target uses https:// only for a TLS service`);
  }
  return unreachable(e.code ? `${e.code}: ${e.message}` : String(e.message ?? err), checkTarget);
}

/** The whole request took longer than timeouts.request. */
export function requestTimeoutError(target: TunnelTarget, file: string): CtbridgeError {
  const ms = target.config.timeouts.request;
  return new CtbridgeError(
    'CTB_REQUEST_TIMEOUT',
    `the request to ${target.origin} (tunnel '${target.name}') took longer than ${formatDuration(ms)}`,
    { hint: `if the service is just slow, raise ${file}'s tunnels.${target.name}.timeouts.request`, params: { seconds: ms / 1000 } },
  );
}
