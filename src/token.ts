/**
 * Agent tokens: JWTs the relay issues (`ctbridge token`) and verifies when an
 * agent connects. Claims: sub = agent id, tunnels = what it may serve, plus
 * iss, aud, iat, exp and a random jti. HS256 with a shared secret, or EdDSA
 * (Ed25519) / ES256 with a key pair. Failure messages are for IT admins and
 * never contain the token or the key.
 */
import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import {
  SignJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, importPKCS8, importSPKI, jwtVerify,
  type CryptoKey, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey,
} from 'jose';
import { CtbridgeError } from './errors.js';

export type TokenFailureReason =
  | 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'wrong_audience' | 'wrong_issuer' | 'bad_claims';

export class TokenError extends CtbridgeError {
  readonly reason: TokenFailureReason;

  constructor(reason: TokenFailureReason, message: string, hint: string) {
    super('CTB_TOKEN_INVALID', message, { hint });
    this.name = 'TokenError';
    this.reason = reason;
  }
}

export type AsymmetricAlg = 'EdDSA' | 'ES256';
export type SigningKey = { secret: string } | { privateKeyPem: string; alg?: AsymmetricAlg };
/** `publicKey`: PEM SPKI text ("BEGIN PUBLIC KEY") or JWKS JSON text. */
export type VerificationKey = { secret: string } | { publicKey: string };

export interface SignAgentTokenOptions {
  agentId: string;
  tunnels: readonly string[];
  ttlMs: number;
  key: SigningKey;
  issuer?: string;
  audience?: string;
}

export interface VerifyOptions {
  issuer: string;
  audience: string;
  clockToleranceSec?: number;
}

export interface AgentClaims {
  agentId: string;
  tunnels: string[];
  expiresAt: Date;
}

export interface TokenVerifier {
  verify(token: string | undefined): Promise<AgentClaims>;
}

/** The agent warns at start when its token expires sooner than this. */
export const TOKEN_EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

const SAFE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const keyError = (message: string) => new CtbridgeError('CTB_CONFIG_INVALID', message, {
  hint: 'use an Ed25519 or EC P-256 key in PEM form, e.g. `openssl genpkey -algorithm ed25519 -out agent-signing.pem`',
});

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const show = (v: unknown) => JSON.stringify(v)?.slice(0, 80) ?? 'nothing';

function algOf(key: KeyObject, requested?: AsymmetricAlg): AsymmetricAlg {
  const alg = key.asymmetricKeyType === 'ed25519' ? 'EdDSA'
    : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
  if (!alg) throw keyError(`token key is of type ${key.asymmetricKeyType ?? 'unknown'}; ctbridge accepts Ed25519 (EdDSA) or EC P-256 (ES256)`);
  if (requested && requested !== alg) throw keyError(`token key is for ${alg}, but alg ${requested} was configured`);
  return alg;
}

function parsePem<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch {
    throw keyError(`${what} is not a valid PEM key`);
  }
}

function issueHint(p?: JWTPayload): string {
  const agent = typeof p?.sub === 'string' && SAFE_NAME.test(p.sub) ? p.sub : '<agent-id>';
  const t = Array.isArray(p?.tunnels) && p.tunnels.length && p.tunnels.every((x) => typeof x === 'string' && SAFE_NAME.test(x))
    ? p.tunnels.join(',') : '<tunnels>';
  return `issue a new token with \`ctbridge token --config relay.yaml --agent ${agent} --tunnels ${t} --ttl 365d\` and set CTBRIDGE_AGENT_TOKEN on the agent`;
}

const malformed = () => new TokenError('malformed', 'agent token is malformed (not a signed JWT)',
  `check that CTBRIDGE_AGENT_TOKEN holds the whole token; ${issueHint()}`);

function claimsOf(p: JWTPayload): AgentClaims {
  const hint = issueHint(p);
  if (typeof p.sub !== 'string' || !p.sub) throw new TokenError('bad_claims', 'agent token has no agent id (the "sub" claim)', hint);
  const { tunnels } = p;
  if (!Array.isArray(tunnels) || !tunnels.length || !tunnels.every((x) => typeof x === 'string' && x)) {
    throw new TokenError('bad_claims', 'agent token has no "tunnels" claim listing the tunnels it may serve', hint);
  }
  if (typeof p.exp !== 'number') throw new TokenError('bad_claims', 'agent token has no expiry (the "exp" claim)', hint);
  return { agentId: p.sub, tunnels: [...tunnels], expiresAt: new Date(p.exp * 1000) };
}

export async function signAgentToken(o: SignAgentTokenOptions): Promise<string> {
  if (!o.agentId) throw new CtbridgeError('CTB_CONFIG_INVALID', 'agent id must not be empty');
  if (!o.tunnels.length) throw new CtbridgeError('CTB_CONFIG_INVALID', `agent ${o.agentId}: list at least one tunnel`);
  if (!(o.ttlMs > 0) || !Number.isFinite(o.ttlMs)) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token ttl must be a positive duration');
  let alg: string;
  let key: Uint8Array | CryptoKey;
  if ('secret' in o.key) {
    if (!o.key.secret) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token secret must not be empty');
    [alg, key] = ['HS256', new TextEncoder().encode(o.key.secret)];
  } else {
    const pem = o.key.privateKeyPem;
    alg = algOf(parsePem(() => createPrivateKey(pem), 'token private key'), o.key.alg);
    key = await importPKCS8(pem, alg);
  }
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tunnels: [...o.tunnels] })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setSubject(o.agentId)
    .setIssuer(o.issuer ?? 'ctbridge')
    .setAudience(o.audience ?? 'ctbridge')
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(o.ttlMs / 1000))
    .setJti(randomUUID())
    .sign(key);
}

type LoadedKey = { getKey: JWTVerifyGetKey; algorithms: string[] };

function loadVerificationKey(k: VerificationKey): Promise<LoadedKey> {
  if ('secret' in k) {
    if (!k.secret) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token secret must not be empty');
    const secret = new TextEncoder().encode(k.secret);
    return Promise.resolve({ getKey: () => secret, algorithms: ['HS256'] });
  }
  const text = k.publicKey.trim();
  if (text.startsWith('{')) {
    try {
      const jwks = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet);
      return Promise.resolve({ getKey: jwks, algorithms: ['EdDSA', 'ES256'] });
    } catch {
      throw keyError('token public key looks like JSON but is not a JWKS ({"keys": [...]})');
    }
  }
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) throw keyError('token public key must be PEM SPKI ("BEGIN PUBLIC KEY") or JWKS JSON');
  const alg = algOf(parsePem(() => createPublicKey(text), 'token public key'));
  return importSPKI(text, alg).then((key) => ({ getKey: () => key, algorithms: [alg] }));
}

function explain(err: unknown, token: string, o: Required<VerifyOptions>, algorithms: string[]): TokenError {
  if (err instanceof errors.JWTExpired) {
    const exp = typeof err.payload.exp === 'number' ? ` at ${isoSeconds(new Date(err.payload.exp * 1000))}` : '';
    return new TokenError('expired', `agent token expired${exp}`, issueHint(err.payload));
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const p = err.payload;
    const hint = `${issueHint(p)}; the token must come from this relay's config`;
    if (err.claim === 'nbf') {
      const nbf = typeof p.nbf === 'number' ? ` before ${isoSeconds(new Date(p.nbf * 1000))}` : ' yet';
      return new TokenError('not_yet_valid', `agent token is not valid${nbf}`, 'check that the clocks of the relay and of the machine that issued the token are right (NTP)');
    }
    if (err.claim === 'aud') {
      return new TokenError('wrong_audience', `agent token is for audience ${show(p.aud)}, this relay expects ${show(o.audience)}`, hint);
    }
    if (err.claim === 'iss') {
      return new TokenError('wrong_issuer', `agent token was issued by ${show(p.iss)}, this relay expects ${show(o.issuer)}`, hint);
    }
    return new TokenError('bad_claims', `agent token has a missing or invalid "${err.claim}" claim`, issueHint(p));
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    let alg: unknown;
    try { alg = decodeProtectedHeader(token).alg; } catch { /* shown as "nothing" */ }
    return new TokenError('bad_signature', `agent token is signed with ${show(alg)}, this relay accepts only ${algorithms.join(' or ')}`, issueHint());
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey
    || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenError('bad_signature', "agent token signature does not match this relay's key (tampered with, or issued with another secret or key)", issueHint());
  }
  if (err instanceof errors.JOSEError) {
    return malformed();
  }
  throw err;
}

export function createTokenVerifier(key: VerificationKey, options: VerifyOptions): TokenVerifier {
  const o = { clockToleranceSec: 30, ...options };
  const ready = loadVerificationKey(key);
  ready.catch(() => {}); // surfaced by verify()
  return {
    async verify(token) {
      const { getKey, algorithms } = await ready;
      if (!token) throw new TokenError('missing', 'agent sent no token', 'set CTBRIDGE_AGENT_TOKEN on the agent');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          algorithms, issuer: o.issuer, audience: o.audience, clockTolerance: o.clockToleranceSec,
        }));
      } catch (err) {
        throw explain(err, token, o, algorithms);
      }
      return claimsOf(payload);
    },
  };
}

/** Reads a token's claims WITHOUT checking its signature: for the agent to log what it carries. */
export function decodeTokenUnverified(token: string, now = new Date()): AgentClaims & { expiresSoon: boolean } {
  let payload: JWTPayload;
  try {
    payload = decodeJwt(token);
  } catch {
    throw malformed();
  }
  const claims = claimsOf(payload);
  return { ...claims, expiresSoon: claims.expiresAt.getTime() - now.getTime() < TOKEN_EXPIRY_WARNING_MS };
}
