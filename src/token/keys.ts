/**
 * Token keys: the signing and verification keys config gives (an HS256
 * secret, an Ed25519 / P-256 private key in PEM, a public key in PEM SPKI or
 * a JWKS), read into node:crypto KeyObjects with their alg and fingerprint.
 * An unusable key is CTB_CONFIG_INVALID, and the message never holds the key.
 */
import { createHash, createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CtbridgeError } from '../errors.js';

export type AsymmetricAlg = 'EdDSA' | 'ES256';
/** `id`: the key id, written as `kid` in the token header. */
export type SigningKey = ({ secret: string } | { privateKeyPem: string; alg?: AsymmetricAlg }) & { id?: string };
/** `publicKey`: PEM SPKI text ("BEGIN PUBLIC KEY") or JWKS JSON text. `id`: the key id tokens name as `kid`. */
export type VerificationKey = ({ secret: string } | { publicKey: string }) & { id?: string };

export const keyError = (message: string) => new CtbridgeError('CTB_CONFIG_INVALID', message, {
  hint: 'use an Ed25519 or EC P-256 key in PEM form, e.g. `openssl genpkey -algorithm ed25519 -out agent-signing.pem`',
});

export function algOf(key: KeyObject, requested?: AsymmetricAlg): AsymmetricAlg {
  const alg = key.asymmetricKeyType === 'ed25519' ? 'EdDSA'
    : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
  if (!alg) throw keyError(`token key is of type ${key.asymmetricKeyType ?? 'unknown'}; ctbridge accepts Ed25519 (EdDSA) or EC P-256 (ES256)`);
  if (requested && requested !== alg) throw keyError(`token key is for ${alg}, but alg ${requested} was configured`);
  return alg;
}

export function parsePem<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch {
    throw keyError(`${what} is not a valid PEM key`);
  }
}

/** One key a token can be checked against (a JWKS gives one per usable key). */
export interface Candidate {
  /** The configured key id (auth.keys[].id), if any. */
  id: string | undefined;
  /** The `kid` of the key inside a JWKS file, if any. */
  jwkKid: string | undefined;
  alg: 'HS256' | AsymmetricAlg;
  key: KeyObject;
  fingerprint: string;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex').slice(0, 16);
const spkiFingerprint = (key: KeyObject) => sha256(key.export({ type: 'spki', format: 'der' }));

export function loadCandidates(k: VerificationKey): Candidate[] {
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
