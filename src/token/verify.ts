/**
 * Verifying agent tokens when an agent connects: against one key or several
 * (auth.keys, picked by the `kid` header), with issuer, audience, expiry and
 * the revocation list (auth.revoked); and re-checking a live connection's
 * claims after a config reload. Failures are TokenErrors saying why, for IT
 * admins, without the token or the key.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  UnsecuredJWT, decodeProtectedHeader, errors, jwtVerify, type JWTClaimVerificationOptions, type JWTPayload, type ProtectedHeaderParameters,
} from 'jose';
import { CtbridgeError } from '../errors.js';
import {
  TOKEN_CLOCK_TOLERANCE_MS, TokenError, claimsOf, isoSeconds, issueHint, malformed, show, type AgentClaims, type VerifiedAgentClaims,
} from './claims.js';
import { loadCandidates, type Candidate, type VerificationKey } from './keys.js';

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
