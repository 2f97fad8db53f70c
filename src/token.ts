/**
 * Agent tokens: JWTs the relay issues (`ctbridge token`) and verifies when an
 * agent connects. Claims: sub = agent id, tunnels = what it may serve, plus
 * iss, aud, iat, exp and a random jti (the token id). HS256 with a shared
 * secret, or EdDSA (Ed25519) / ES256 with a key pair. A key may have an id,
 * which goes in the JWT header as `kid`, so the relay can hold several keys
 * at once (rotation) and pick the right one. Failure messages are for IT
 * admins and never contain the token or the key.
 *
 * This file only gathers the public names; the code is in src/token/:
 * `claims.ts` (TokenError, the claims, constants, decoding without a check),
 * `keys.ts` (reading keys, fingerprints), `sign.ts` (issuing) and
 * `verify.ts` (the relay's verifier, revocation).
 */
export {
  DEFAULT_TOKEN_TTL, KEY_ID_PATTERN, TOKEN_CLOCK_TOLERANCE_MS, TOKEN_EXPIRY_WARNING_MS, TOKEN_ID_PATTERN, TokenError, decodeTokenUnverified,
  type AgentClaims, type TokenFailureReason, type VerifiedAgentClaims,
} from './token/claims.js';
export { keyFingerprints, type AsymmetricAlg, type SigningKey, type VerificationKey } from './token/keys.js';
export { newTokenId, signAgentToken, type SignAgentTokenOptions } from './token/sign.js';
export { createTokenVerifier, revocationReason, type RevocationList, type TokenVerifier, type VerifyOptions } from './token/verify.js';
