/**
 * Agent tokens: JWTs the relay issues (`ctbridge token`) and verifies when an
 * agent connects. Claims: sub = agent id, tunnels = what it may serve, plus
 * iss, aud, iat, exp and a random jti (the token id). HS256 with a shared
 * secret, or EdDSA (Ed25519) / ES256 with a key pair. A key may have an id,
 * which goes in the JWT header as `kid`, so the relay can hold several keys
 * at once (rotation) and pick the right one. Failure messages are for IT
 * admins and never contain the token or the key.
 */
import {
  createHash, createHmac, createPrivateKey, createPublicKey, createSecretKey, randomBytes, timingSafeEqual, type JsonWebKey, type KeyObject,
} from 'node:crypto';
import {
  SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTClaimVerificationOptions, type JWTHeaderParameters, type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';
import { CtbridgeError } from './errors.js';
import { untrusted } from './log-text.js';

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

export type AsymmetricAlg = 'EdDSA' | 'ES256';
/** `id`: the key id, written as `kid` in the token header. */
export type SigningKey = ({ secret: string } | { privateKeyPem: string; alg?: AsymmetricAlg }) & { id?: string };
/** `publicKey`: PEM SPKI text ("BEGIN PUBLIC KEY") or JWKS JSON text. `id`: the key id tokens name as `kid`. */
export type VerificationKey = ({ secret: string } | { publicKey: string }) & { id?: string };

export interface SignAgentTokenOptions {
  agentId: string;
  tunnels: readonly string[];
  ttlMs: number;
  key: SigningKey;
  issuer?: string;
  audience?: string;
}

/** auth.revoked: agents and token ids the relay refuses. */
export interface RevocationList {
  readonly agents: readonly string[];
  readonly tokens: readonly string[];
}

export interface VerifyOptions {
  issuer: string;
  audience: string;
  clockToleranceSec?: number;
  /** Agents and token ids to refuse (auth.revoked). */
  revoked?: RevocationList;
  /** Config file named in refusal messages (default `relay.yaml`). Agents see it: give a base name, not a path. */
  configName?: string;
}

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
  /** Fingerprint of the configured key that accepted the signature (see `keyFingerprint`). */
  verifiedBy: string;
  /** The issuer and audience it was checked against. */
  issuer: string;
  audience: string;
}

export interface TokenVerifier {
  /** Resolves with the claims of a valid token; rejects with TokenError (CTB_TOKEN_INVALID) saying why not. */
  verify(token: string | undefined): Promise<VerifiedAgentClaims>;
  /**
   * Whether claims verified earlier (perhaps by another verifier, before a
   * config reload) still hold under this verifier's keys, issuer, audience and
   * revocation list, and have not expired: undefined if so, else the TokenError
   * to close the connection with (CloseCode.TOKEN_INVALID, `err.message`).
   */
  recheck(claims: VerifiedAgentClaims, now?: Date): TokenError | undefined;
  /** The ids of the keys this verifier holds, in order (keys without an id are left out). */
  readonly keyIds: readonly string[];
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
const keyError = (message: string) => new CtbridgeError('CTB_CONFIG_INVALID', message, {
  hint: 'use an Ed25519 or EC P-256 key in PEM form, e.g. `openssl genpkey -algorithm ed25519 -out agent-signing.pem`',
});

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
/** A value from a token, for a message: JSON, sanitized and capped (it comes from whoever made the token). */
const show = (v: unknown) => untrusted(JSON.stringify(v) ?? 'nothing', 80) ?? 'nothing';

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
  return `issue a new token with \`ctbridge token --config relay.yaml --agent ${agent} --tunnels ${t} --ttl ${DEFAULT_TOKEN_TTL}\` and set CTBRIDGE_AGENT_TOKEN on the agent`;
}

const malformed = () => new TokenError('malformed', 'agent token is malformed (not a signed JWT)',
  `check that CTBRIDGE_AGENT_TOKEN holds the whole token; ${issueHint()}`);

function claimsOf(p: JWTPayload, header: ProtectedHeaderParameters): AgentClaims {
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

/** A new token id: 16 hex characters (64 random bits). */
export function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

export async function signAgentToken(o: SignAgentTokenOptions): Promise<string> {
  if (!o.agentId) throw new CtbridgeError('CTB_CONFIG_INVALID', 'agent id must not be empty');
  if (!o.tunnels.length) throw new CtbridgeError('CTB_CONFIG_INVALID', `agent ${o.agentId}: list at least one tunnel`);
  if (!(o.ttlMs > 0) || !Number.isFinite(o.ttlMs)) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token ttl must be a positive duration');
  const { id } = o.key;
  if (id !== undefined && !KEY_ID_PATTERN.test(id)) {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `key id ${show(id)} must be 1 to 64 letters, digits, ".", "_" or "-"`);
  }
  let alg: string;
  let key: KeyObject;
  if ('secret' in o.key) {
    if (!o.key.secret) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token secret must not be empty');
    [alg, key] = ['HS256', createSecretKey(Buffer.from(o.key.secret, 'utf8'))];
  } else {
    const pem = o.key.privateKeyPem;
    key = parsePem(() => createPrivateKey(pem), 'token private key');
    alg = algOf(key, o.key.alg);
  }
  const header: JWTHeaderParameters = { alg, typ: 'JWT' };
  if (id !== undefined) header.kid = id;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tunnels: [...o.tunnels] })
    .setProtectedHeader(header)
    .setSubject(o.agentId)
    .setIssuer(o.issuer ?? 'ctbridge')
    .setAudience(o.audience ?? 'ctbridge')
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(o.ttlMs / 1000))
    .setJti(newTokenId())
    .sign(key);
}

/** One key a token can be checked against (a JWKS gives one per usable key). */
interface Candidate {
  /** The configured key id (auth.keys[].id), if any. */
  id: string | undefined;
  /** The `kid` of the key inside a JWKS file, if any. */
  jwkKid: string | undefined;
  alg: 'HS256' | AsymmetricAlg;
  key: KeyObject;
  fingerprint: string;
}

/**
 * An HS256 token's signature, checked with node:crypto's HMAC, then jose's
 * own header and claim checks (crit, b64, exp, nbf, iat, iss, aud, clock
 * tolerance: UnsecuredJWT.decode runs the same validateClaimsSet as
 * jwtVerify, on the token's header with its alg set to none once the
 * signature has been checked here). Returns undefined when the signature
 * does not match. Why not jwtVerify: jose 6 checks HMACs through WebCrypto,
 * whose job machinery cost 80-160 us of CPU per token on Node 20 against
 * 10 us for this (a reconnect storm verifies 15,000 tokens at once, and
 * they were a fifth of the relay's CPU in it: docs/performance.md). The alg
 * (HS256 only: none and the asymmetric algs never reach here) was checked
 * by the caller against the key.
 */
function verifyHs256(token: string, key: KeyObject, header: ProtectedHeaderParameters, options: JWTClaimVerificationOptions): JWTPayload | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) throw new errors.JWSInvalid('Invalid Compact JWS');
  const [h, p, s] = parts;
  const expected = Buffer.from(createHmac('sha256', key).update(`${h}.${p}`).digest('base64url'), 'latin1');
  const given = Buffer.from(s, 'latin1');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const unsecuredHeader = Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url');
  return UnsecuredJWT.decode(`${unsecuredHeader}.${p}.`, options).payload;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex').slice(0, 16);
const spkiFingerprint = (key: KeyObject) => sha256(key.export({ type: 'spki', format: 'der' }));

function loadCandidates(k: VerificationKey): Candidate[] {
  const id = k.id;
  if ('secret' in k) {
    if (!k.secret) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token secret must not be empty');
    const bytes = Buffer.from(k.secret, 'utf8');
    return [{ id, jwkKid: undefined, alg: 'HS256', key: createSecretKey(bytes), fingerprint: sha256(Buffer.concat([Buffer.from('HS256\0'), bytes])) }];
  }
  const text = k.publicKey.trim();
  if (text.startsWith('{')) {
    let jwks: { keys?: unknown };
    try {
      jwks = JSON.parse(text) as { keys?: unknown };
    } catch {
      throw keyError('token public key looks like JSON but is not a JWKS ({"keys": [...]})');
    }
    if (!Array.isArray(jwks?.keys)) throw keyError('token public key looks like JSON but is not a JWKS ({"keys": [...]})');
    const out: Candidate[] = [];
    for (const jwk of jwks.keys as (JsonWebKey & { kid?: unknown; use?: unknown })[]) {
      if (jwk?.use !== undefined && jwk.use !== 'sig') continue;
      let key: KeyObject;
      try {
        key = createPublicKey({ key: jwk, format: 'jwk' });
      } catch {
        continue; // not a key Node reads (e.g. RSA without n): skipped, like any other unusable key
      }
      const type = key.asymmetricKeyType;
      if (type !== 'ed25519' && !(type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')) continue;
      out.push({ id, jwkKid: typeof jwk.kid === 'string' ? jwk.kid : undefined, alg: algOf(key), key, fingerprint: spkiFingerprint(key) });
    }
    if (!out.length) throw keyError('token JWKS holds no Ed25519 or P-256 signing key');
    return out;
  }
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) throw keyError('token public key must be PEM SPKI ("BEGIN PUBLIC KEY") or JWKS JSON');
  const key = parsePem(() => createPublicKey(text), 'token public key');
  return [{ id, jwkKid: undefined, alg: algOf(key), key, fingerprint: spkiFingerprint(key) }];
}

/**
 * Fingerprints of a verification key (one per key in a JWKS): 16 hex
 * characters of SHA-256, the same for a public key in PEM or in a JWKS.
 * `VerifiedAgentClaims.verifiedBy` holds one of these.
 */
export function keyFingerprints(key: VerificationKey): string[] {
  return loadCandidates(key).map((c) => c.fingerprint);
}

/**
 * Why `claims` are refused by `revoked`, or undefined: "agent 'acme-1' is
 * revoked in auth.revoked.agents of relay.yaml". `configName` names the file
 * (the agent sees the message: a base name, not a path).
 */
export function revocationReason(
  claims: Pick<AgentClaims, 'agentId' | 'tokenId'>,
  revoked: RevocationList | undefined,
  configName = 'relay.yaml',
): string | undefined {
  if (!revoked) return undefined;
  if (revoked.agents.includes(claims.agentId)) return `agent '${claims.agentId}' is revoked in auth.revoked.agents of ${configName}`;
  if (claims.tokenId !== undefined && revoked.tokens.includes(claims.tokenId)) {
    return `token ${claims.tokenId} of agent '${claims.agentId}' is revoked in auth.revoked.tokens of ${configName}`;
  }
  return undefined;
}

const REVOKED_HINT = 'the relay operator has revoked it; if this agent should connect, ask them for a new token (and to lift the revocation of the agent id, if that is what was revoked)';

function explain(err: unknown, o: Required<Pick<VerifyOptions, 'issuer' | 'audience'>>): TokenError {
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
    return new TokenError('bad_claims', `agent token has a missing or invalid ${show(err.claim)} claim`, issueHint(p));
  }
  if (err instanceof errors.JOSEError) {
    return malformed();
  }
  throw err;
}

const badSignature = (keyId: string | undefined) => new TokenError(
  'bad_signature',
  keyId === undefined
    ? "agent token signature does not match this relay's key (tampered with, or issued with another secret or key)"
    : `agent token signature does not match key ${show(keyId)} of this relay (tampered with, or issued with another key of that id)`,
  issueHint(),
);

/**
 * Checks agent tokens against one key or several (auth.keys, newest first).
 * A token whose header names a key (`kid`) is checked against that key only
 * (a configured key id, else a key of that `kid` inside a JWKS); a token
 * without `kid` is tried against every key, so tokens issued before key ids
 * keep working. Throws CTB_CONFIG_INVALID at once for an unusable key.
 */
export function createTokenVerifier(keys: VerificationKey | readonly VerificationKey[], options: VerifyOptions): TokenVerifier {
  const list: readonly VerificationKey[] = Array.isArray(keys) ? keys : [keys as VerificationKey];
  if (!list.length) throw new CtbridgeError('CTB_CONFIG_INVALID', 'no token verification key configured');
  const ids = list.map((k) => k.id).filter((id): id is string => id !== undefined);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined) throw new CtbridgeError('CTB_CONFIG_INVALID', `token key id ${show(dup)} is used by more than one key`);
  const candidates = list.flatMap(loadCandidates);
  const o = { clockToleranceSec: TOKEN_CLOCK_TOLERANCE_MS / 1000, configName: 'relay.yaml', ...options };
  const toleranceMs = o.clockToleranceSec * 1000;

  /** The keys a token naming `kid` may be checked against (every key when it names none). */
  const pool = (kid: string | undefined): Candidate[] => {
    if (kid === undefined) return candidates;
    const byId = candidates.filter((c) => c.id === kid);
    return byId.length ? byId : candidates.filter((c) => c.jwkKid === kid);
  };
  const unknownKey = (kid: string) => new TokenError(
    'unknown_key',
    `agent token names key ${show(kid)}, which this relay does not have (key ids in ${o.configName}: ${ids.length ? ids.join(', ') : 'none'})`,
    `the token was signed with a key that is not (or no longer) in auth.keys of ${o.configName}: add that key back, or ${issueHint()}`,
  );
  const revokedCheck = (claims: AgentClaims): TokenError | undefined => {
    const reason = revocationReason(claims, o.revoked, o.configName);
    return reason === undefined ? undefined : new TokenError('revoked', reason, REVOKED_HINT);
  };

  return {
    keyIds: ids,

    async verify(token) {
      if (!token) throw new TokenError('missing', 'agent sent no token', 'set CTBRIDGE_AGENT_TOKEN on the agent');
      let header: ProtectedHeaderParameters;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw malformed();
      }
      if (header.kid !== undefined && typeof header.kid !== 'string') throw malformed();
      const kid = header.kid;
      const usable = pool(kid);
      if (!usable.length) throw unknownKey(kid!);
      const matching = usable.filter((c) => c.alg === header.alg);
      if (!matching.length) {
        const algs = [...new Set(usable.map((c) => c.alg))];
        throw new TokenError('bad_signature', `agent token is signed with ${show(header.alg)}, this relay accepts only ${algs.join(' or ')}${
          kid === undefined ? '' : ` for key ${show(kid)}`}`, issueHint());
      }
      for (const c of matching) {
        let payload: JWTPayload;
        try {
          const checks = { issuer: o.issuer, audience: o.audience, clockTolerance: o.clockToleranceSec };
          // jose verifies asymmetric signatures; asymmetric KeyObjects' conversion it caches.
          const verified = c.alg === 'HS256' ? verifyHs256(token, c.key, header, checks) : (await jwtVerify(token, c.key, { algorithms: [c.alg], ...checks })).payload;
          if (!verified) continue;
          payload = verified;
        } catch (err) {
          if (err instanceof errors.JWSSignatureVerificationFailed) continue;
          throw explain(err, o);
        }
        const claims = claimsOf(payload, header);
        const revoked = revokedCheck(claims);
        if (revoked) throw revoked;
        return { ...claims, verifiedBy: c.fingerprint, issuer: o.issuer, audience: o.audience };
      }
      throw badSignature(kid);
    },

    recheck(claims, now = new Date()) {
      if (claims.expiresAt.getTime() + toleranceMs <= now.getTime()) {
        return new TokenError('expired', `agent token expired at ${isoSeconds(claims.expiresAt)}`,
          issueHint({ sub: claims.agentId, tunnels: claims.tunnels }));
      }
      if (!pool(claims.keyId).some((c) => c.fingerprint === claims.verifiedBy)) {
        if (claims.keyId !== undefined && !pool(claims.keyId).length) return unknownKey(claims.keyId);
        return new TokenError('unknown_key', `the key that signed the agent token${
          claims.keyId === undefined ? '' : ` (${show(claims.keyId)})`} is no longer in ${o.configName}`, issueHint({ sub: claims.agentId, tunnels: claims.tunnels }));
      }
      if (claims.issuer !== o.issuer) {
        return new TokenError('wrong_issuer', `agent token was issued by ${show(claims.issuer)}, this relay now expects ${show(o.issuer)}`, issueHint({ sub: claims.agentId, tunnels: claims.tunnels }));
      }
      if (claims.audience !== o.audience) {
        return new TokenError('wrong_audience', `agent token is for audience ${show(claims.audience)}, this relay now expects ${show(o.audience)}`, issueHint({ sub: claims.agentId, tunnels: claims.tunnels }));
      }
      return revokedCheck(claims);
    },
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
