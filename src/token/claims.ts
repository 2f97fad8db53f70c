/**
 * Agent token claims: the failure type (TokenError), the claims a token
 * carries (sub = agent id, tunnels = what it may serve, exp, iat, jti, the
 * `kid` header), the id patterns, the lifetime constants, and reading a
 * token's claims without checking its signature. Messages are for IT admins:
 * values from a token are sanitized and capped, never the whole token.
 */
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { CtbridgeError } from '../errors.js';
import { untrusted } from '../log-text.js';

export type TokenFailureReason =
  | 'missing' | 'malformed' | 'bad_signature' | 'unknown_key' | 'expired' | 'not_yet_valid'
  | 'wrong_audience' | 'wrong_issuer' | 'bad_claims' | 'revoked';

export class TokenError extends CtbridgeError {
  readonly reason: TokenFailureReason;

  constructor(reason: TokenFailureReason, message: string, hint: string) {
    super('CTB_TOKEN_INVALID', message, { hint });
    this.name = 'TokenError';
    this.reason = reason;
  }
}

/** Key ids (auth.keys[].id, the `kid` header): letters, digits, `.`, `_`, `-`; 1 to 64 characters. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Token ids (`jti`) that auth.revoked.tokens accepts: the same charset (old tokens have UUIDs). */
export const TOKEN_ID_PATTERN = KEY_ID_PATTERN;

export interface AgentClaims {
  agentId: string;
  tunnels: string[];
  expiresAt: Date;
  /** The token id (`jti`); undefined for tokens issued without one. */
  tokenId: string | undefined;
  /** The id of the key that signed it (`kid` header); undefined for tokens signed by a key without an id. */
  keyId: string | undefined;
  /** `iat`, when the token has one. */
  issuedAt: Date | undefined;
}

/** Claims of a token the relay has verified, with what it was verified against (for `recheck`). */
export interface VerifiedAgentClaims extends AgentClaims {
  /** Fingerprint of the configured key that accepted the signature (see `keyFingerprints` in keys.ts). */
  verifiedBy: string;
  /** The issuer and audience it was checked against. */
  issuer: string;
  audience: string;
}

/**
 * Clock skew allowed between the host that issued a token and the relay:
 * a token is still accepted this long past its expiry. A live connection is
 * cut that long after `exp` too (the relay checks it then).
 */
export const TOKEN_CLOCK_TOLERANCE_MS = 5_000;

/** The agent warns at start when its token expires sooner than this. */
export const TOKEN_EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;
/** The lifetime `ctbridge token` gives a token unless told otherwise. */
export const DEFAULT_TOKEN_TTL = '90d';

const SAFE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
/** A value from a token, for a message: JSON, sanitized and capped (it comes from whoever made the token). */
export const show = (v: unknown) => untrusted(JSON.stringify(v) ?? 'nothing', 80) ?? 'nothing';

/** The hint of a refusal: the `ctbridge token` command that issues a new token (names only if they are safe to show). */
export function issueHint(p?: JWTPayload): string {
  const agent = typeof p?.sub === 'string' && SAFE_NAME.test(p.sub) ? p.sub : '<agent-id>';
  const t = Array.isArray(p?.tunnels) && p.tunnels.length && p.tunnels.every((x) => typeof x === 'string' && SAFE_NAME.test(x))
    ? p.tunnels.join(',') : '<tunnels>';
  return `issue a new token with \`ctbridge token --config relay.yaml --agent ${agent} --tunnels ${t} --ttl ${DEFAULT_TOKEN_TTL}\` and set CTBRIDGE_AGENT_TOKEN on the agent`;
}

/** The refusal of a token that is not a signed JWT. */
export const malformed = () => new TokenError('malformed', 'agent token is malformed (not a signed JWT)',
  `check that CTBRIDGE_AGENT_TOKEN holds the whole token; ${issueHint()}`);

/** The claims of a decoded token (signature checked or not); TokenError `bad_claims` when sub, tunnels or exp is missing. */
export function claimsOf(p: JWTPayload, header: ProtectedHeaderParameters): AgentClaims {
  const hint = issueHint(p);
  if (typeof p.sub !== 'string' || !p.sub) throw new TokenError('bad_claims', 'agent token has no agent id (the "sub" claim)', hint);
  const { tunnels } = p;
  if (!Array.isArray(tunnels) || !tunnels.length || !tunnels.every((x) => typeof x === 'string' && x)) {
    throw new TokenError('bad_claims', 'agent token has no "tunnels" claim listing the tunnels it may serve', hint);
  }
  if (typeof p.exp !== 'number') throw new TokenError('bad_claims', 'agent token has no expiry (the "exp" claim)', hint);
  return {
    agentId: p.sub,
    tunnels: [...tunnels],
    expiresAt: new Date(p.exp * 1000),
    tokenId: typeof p.jti === 'string' && p.jti ? p.jti : undefined,
    keyId: typeof header.kid === 'string' && header.kid ? header.kid : undefined,
    issuedAt: typeof p.iat === 'number' ? new Date(p.iat * 1000) : undefined,
  };
}

/** Reads a token's claims WITHOUT checking its signature: for the agent to log what it carries. */
export function decodeTokenUnverified(token: string, now = new Date()): AgentClaims & { expiresSoon: boolean } {
  let payload: JWTPayload;
  let header: ProtectedHeaderParameters;
  try {
    payload = decodeJwt(token);
    header = decodeProtectedHeader(token);
  } catch {
    throw malformed();
  }
  const claims = claimsOf(payload, header);
  return { ...claims, expiresSoon: claims.expiresAt.getTime() - now.getTime() < TOKEN_EXPIRY_WARNING_MS };
}
