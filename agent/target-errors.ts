/**
 * Turns a failure to reach a tunnel's target into a CtbridgeError whose
 * message names the tunnel, the target and what to check. These messages go
 * back to the caller in the JSON error body, so they carry no secrets (the
 * origin never has user-info).
 */
import { CtbridgeError } from '../src/errors.js';
import { formatDuration } from '../src/config/index.js';
import { TargetConnectTimeout, type TunnelTarget } from './target-tunnels.js';

/** Node/OpenSSL certificate verification failures. */
export const TLS_VERIFY_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** TLS failures that are not about the certificate (protocol mismatch, handshake alert). */
export function isTlsProtocolError(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPROTO' || err.code === 'ECONNRESET' && /TLS|SSL/i.test(err.message)
    || (err.code?.startsWith('ERR_SSL_') ?? false) || err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
}

export interface TargetFailureContext {
  target: TunnelTarget;
  /** The configuration file's name, for hints ("agent.yaml"). */
  file: string;
  /** The target socket was idle longer than timeouts.idle. */
  idleTimedOut: boolean;
  /** The target had started answering. */
  responseStarted: boolean;
}

export function targetError(err: unknown, ctx: TargetFailureContext): CtbridgeError {
  const { target, file } = ctx;
  const t = target.name;
  const key = `${file}'s tunnels.${t}`;
  const unreachable = (why: string, hint: string) =>
    new CtbridgeError('CTB_TARGET_UNREACHABLE', `the agent could not connect to ${target.origin} for tunnel '${t}': ${why}`, { hint, cause: err });

  if (ctx.idleTimedOut) {
    return new CtbridgeError(
      'CTB_TARGET_TIMEOUT',
      `${target.origin} (tunnel '${t}') sent nothing for ${formatDuration(target.config.timeouts.idle)}`,
      { hint: `if the service is just slow, raise ${key}.timeouts.idle`, cause: err },
    );
  }
  if (err instanceof TargetConnectTimeout) {
    return new CtbridgeError(
      'CTB_TARGET_TIMEOUT',
      `the agent could not connect to ${target.origin} for tunnel '${t}' within ${formatDuration(err.timeoutMs)}`,
      { hint: `check that the host is up and that no firewall drops connections from the agent to it, or raise ${key}.timeouts.connect`, cause: err },
    );
  }
  const e = (err ?? {}) as NodeJS.ErrnoException;
  const checkTarget = `check that the service is running and that ${key}.target is right`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return unreachable('connection refused', checkTarget);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable('host name not found (DNS)', `check the host name in ${key}.target and the agent machine's DNS`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return unreachable('no route to host', `check ${key}.target and the network between the agent and the target`);
    case 'ETIMEDOUT':
      return new CtbridgeError('CTB_TARGET_TIMEOUT', `the agent could not connect to ${target.origin} for tunnel '${t}': connection timed out`, {
        hint: `check that the host is up and that no firewall drops connections from the agent to it`, cause: err,
      });
  }
  if (e.code && TLS_VERIFY_CODES.has(e.code)) {
    return unreachable(`the target's TLS certificate was not accepted (${e.code})`,
      `set ${key}.ca to the CA bundle that signed the target's certificate (or tlsVerify: false for a test system)`);
  }
  if (isTlsProtocolError(e)) {
    return unreachable(`TLS handshake failed (${e.code ?? e.message})`, `check that ${key}.target uses https:// only for a TLS service`);
  }
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
    const why = ctx.responseStarted ? 'the target closed the connection in the middle of its answer' : 'the target closed the connection without answering';
    return new CtbridgeError('CTB_TARGET_UNREACHABLE', `${target.origin} (tunnel '${t}'): ${why}`, {
      hint: `check the target service's own logs`, cause: err,
    });
  }
  return unreachable(e.code ? `${e.code}: ${e.message}` : String(e.message ?? err), checkTarget);
}

/** The whole request took longer than timeouts.request. */
export function requestTimeoutError(target: TunnelTarget, file: string): CtbridgeError {
  return new CtbridgeError(
    'CTB_REQUEST_TIMEOUT',
    `the request to ${target.origin} (tunnel '${target.name}') took longer than ${formatDuration(target.config.timeouts.request)}`,
    { hint: `if the service is just slow, raise ${file}'s tunnels.${target.name}.timeouts.request` },
  );
}
