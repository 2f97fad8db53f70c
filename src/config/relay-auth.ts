/**
 * relay.yaml `auth:` — how the relay verifies agent tokens: an HS256 shared
 * secret (also from CTBRIDGE_JWT_SECRET) or an EdDSA/ES256 public key, plus an
 * optional private key for `ctbridge token`. Secrets are never echoed.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { privateKeyObject, publicKey, signingKey, type LoadedPublicKey, type LoadedText } from './files.js';
import type { Section } from './schema-check.js';
import { secret, text } from './values.js';

export const JWT_SECRET_ENV = 'CTBRIDGE_JWT_SECRET';
export const MIN_SECRET_LENGTH = 16;

export interface RelayAuthConfig {
  /** HS256 shared secret; exactly one of `secret` and `publicKey` is set. */
  readonly secret: string | undefined;
  /** Where the secret came from (`env`: CTBRIDGE_JWT_SECRET). */
  readonly secretSource: 'config' | 'env' | undefined;
  /** EdDSA (Ed25519) or ES256 (P-256) verification key: SPKI PEM or JWKS JSON text. */
  readonly publicKey: LoadedPublicKey | undefined;
  /** PKCS8 PEM signing key matching `publicKey`, for `ctbridge token` only. */
  readonly privateKey: LoadedText | undefined;
  readonly audience: string;
  readonly issuer: string;
}

const AUTH_KEYS = ['secret', 'publicKey', 'privateKey', 'audience', 'issuer'];

/** Whether the public half of a PKCS8 key is `pub` (SPKI PEM or one key of a JWKS). */
function keyPairMatches(privatePem: string, pub: LoadedPublicKey): boolean {
  const priv = privateKeyObject(privatePem);
  if (!priv) return false;
  const mine = createPublicKey(priv).export({ format: 'jwk' });
  const candidates: JsonWebKey[] =
    pub.format === 'jwks'
      ? (JSON.parse(pub.text) as { keys: JsonWebKey[] }).keys
      : [createPublicKey(pub.text).export({ format: 'jwk' })];
  return candidates.some((k) => k.kty === mine.kty && k.crv === mine.crv && k.x === mine.x && k.y === mine.y);
}

export function parseRelayAuth(root: Section, env: NodeJS.ProcessEnv): RelayAuthConfig {
  const s = root.section('auth', AUTH_KEYS);
  const baseDir = s.problems.baseDir;
  const envSecret = env[JWT_SECRET_ENV] || undefined;

  let secretValue: string | undefined;
  let secretSource: RelayAuthConfig['secretSource'];
  if (envSecret !== undefined) {
    secretSource = 'env';
    secretValue = s.check(s.key('secret'), envSecret, secret(MIN_SECRET_LENGTH, ` in the ${JWT_SECRET_ENV} environment variable`));
  } else if (s.has('secret')) {
    secretSource = 'config';
    secretValue = s.opt('secret', secret(MIN_SECRET_LENGTH));
  }

  const pub = s.opt('publicKey', publicKey(baseDir));
  if (s.has('publicKey') && envSecret !== undefined) {
    s.fail('publicKey', `cannot be combined with the ${JWT_SECRET_ENV} environment variable (a shared secret); unset one of them`);
  } else if (s.has('publicKey') && s.has('secret')) {
    s.fail('', 'expected exactly one of secret, publicKey, got both');
  } else if (!s.has('publicKey') && secretSource === undefined) {
    s.fail('', `missing; expected auth.secret (or the ${JWT_SECRET_ENV} environment variable) or auth.publicKey`);
  }

  const priv = s.opt('privateKey', signingKey(baseDir));
  if (s.has('privateKey') && !s.has('publicKey')) {
    s.fail('privateKey', 'only used together with auth.publicKey (to sign tokens it verifies)');
  } else if (priv && pub && !keyPairMatches(priv.text, pub)) {
    s.fail('privateKey', `expected the private key of auth.publicKey, got a key from another pair (${priv.file})`);
  }

  return {
    secret: pub ? undefined : secretValue,
    secretSource: pub ? undefined : secretSource,
    publicKey: pub,
    privateKey: priv,
    audience: s.get('audience', text, 'ctbridge'),
    issuer: s.get('issuer', text, 'ctbridge'),
  };
}
