/**
 * Agent authentication from a relay config: the token verifier the relay
 * uses (every key of auth.keys, the revocation list, audience and issuer),
 * the key `ctbridge token` signs with, and the checks that keep a live agent
 * connection honest after a config reload or when its token runs out.
 *
 * Pure: nothing here touches a connection. The relay closes a connection for
 * which `recheckAgentToken` answers an error with CloseCode.TOKEN_INVALID and
 * `err.message` as the reason, and logs `err.reason` and `err.message`.
 */
import { basename } from 'node:path';
import { signingKeyOf, type RelayAuthConfig, type RelayAuthKey } from './config/relay-auth.js';
import { MAX_TIMER_MS } from './config/units.js';
import {
  TOKEN_CLOCK_TOLERANCE_MS, createTokenVerifier, type SigningKey, type TokenError, type TokenVerifier, type VerificationKey, type VerifiedAgentClaims,
} from './token.js';

/** What the auth functions need of a relay config (a whole RelayConfig will do). */
export interface AuthSource {
  /** The config file; its base name appears in refusal messages. */
  readonly file: string;
  readonly auth: RelayAuthConfig;
}

function verificationKey(k: RelayAuthKey): VerificationKey {
  const id = k.id === undefined ? {} : { id: k.id };
  return k.publicKey ? { ...id, publicKey: k.publicKey.text } : { ...id, secret: k.secret ?? '' };
}

const verifiers = new WeakMap<RelayAuthConfig, TokenVerifier>();

/**
 * The verifier for agent tokens under this config: tokens naming a key id
 * are checked against that key only, tokens without one against every key;
 * revoked agents and token ids are refused (CTB_TOKEN_INVALID, reason
 * `revoked`). One verifier per (frozen) auth config; building one again for
 * the same config returns the same verifier.
 */
export function createAgentTokenVerifier(config: AuthSource): TokenVerifier {
  const cached = verifiers.get(config.auth);
  if (cached) return cached;
  const { auth } = config;
  const verifier = createTokenVerifier(auth.keys.map(verificationKey), {
    issuer: auth.issuer,
    audience: auth.audience,
    revoked: auth.revoked,
    configName: basename(config.file),
  });
  verifiers.set(auth, verifier);
  return verifier;
}

/**
 * Whether a connected agent's token (its claims as verified at connect time)
 * is still good under `config`, typically a config just reloaded: undefined
 * if so; otherwise a TokenError whose `message` says why (expired, agent or
 * token revoked, signing key removed from auth.keys, audience or issuer
 * changed) and whose `reason` is the short code to log.
 */
export function recheckAgentToken(claims: VerifiedAgentClaims, config: AuthSource, now: Date = new Date()): TokenError | undefined {
  return createAgentTokenVerifier(config).recheck(claims, now);
}

/**
 * How long until a live connection's token is checked again: just past
 * its expiry as the relay verifies it (exp plus the clock tolerance), at
 * least 1 s, and at most the longest delay a Node timer takes (~24.8 days;
 * a longer one fires after 1 ms): a 90-day token's timer is re-armed when
 * it fires and the token has not expired yet.
 */
export function expiryCheckDelayMs(claims: Pick<VerifiedAgentClaims, 'expiresAt'>, now: Date = new Date()): number {
  const untilExpired = claims.expiresAt.getTime() - now.getTime() + TOKEN_CLOCK_TOLERANCE_MS + 50;
  return Math.min(MAX_TIMER_MS, Math.max(1000, untilExpired));
}

/**
 * The key `ctbridge token` signs with (the first of auth.keys that can sign),
 * and how to name it to a person: `key 2026-11`, `auth.secret`,
 * `CTBRIDGE_JWT_SECRET` or `auth.privateKey`. Undefined when no key can sign
 * (only public keys without their private half).
 */
export function tokenSigningKey(auth: RelayAuthConfig): { key: SigningKey; label: string } | undefined {
  const k = signingKeyOf(auth);
  if (!k) return undefined;
  if (k.secret !== undefined) {
    return { key: k.id === undefined ? { secret: k.secret } : { id: k.id, secret: k.secret }, label: k.id === undefined ? k.where : `key ${k.id}` };
  }
  const privateKeyPem = k.privateKey!.text;
  return { key: k.id === undefined ? { privateKeyPem } : { id: k.id, privateKeyPem }, label: k.id === undefined ? 'auth.privateKey' : `key ${k.id}` };
}
