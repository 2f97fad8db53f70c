/**
 * relay.yaml `auth:` — how the relay verifies agent tokens.
 *
 * - `auth.keys`: a list of keys, newest first, each `{ id, secret }` (HS256)
 *   or `{ id, publicKey [, privateKey] }` (EdDSA/ES256). Tokens carry the id
 *   of the key that signed them (`kid`), so several keys can be valid at once
 *   while one is rotated out.
 * - The shorthand `auth.secret` (also from CTBRIDGE_JWT_SECRET) or
 *   `auth.publicKey` [+ `auth.privateKey`]: one key without an id.
 * - `auth.revoked`: agent ids and token ids the relay refuses.
 *
 * Secrets are never echoed.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { KEY_ID_PATTERN, TOKEN_ID_PATTERN, type RevocationList } from '../token.js';
import { privateKeyObject, publicKey, signingKey, type LoadedPublicKey, type LoadedText } from './files.js';
import { Section, isPlainObject, typeName, type Parse } from './schema-check.js';
import { ValueError, formatValue } from './units.js';
import { secret, text } from './values.js';

export const JWT_SECRET_ENV = 'CTBRIDGE_JWT_SECRET';
/** Least length of an HS256 secret, in bytes of UTF-8. */
export const MIN_SECRET_LENGTH = 32;
/** The template's secret starts with this (any case): a relay must not run with it. */
export const SECRET_PLACEHOLDER_PREFIX = 'REPLACE-ME';
export const GENERATE_SECRET_HINT = 'generate one with `openssl rand -base64 32`';

export interface RelayAuthKey {
  /** auth.keys[].id; undefined for the one key of the auth.secret / auth.publicKey shorthand. */
  readonly id: string | undefined;
  /** HS256 shared secret; exactly one of `secret` and `publicKey` is set. */
  readonly secret: string | undefined;
  /** EdDSA (Ed25519) or ES256 (P-256) verification key: SPKI PEM or JWKS JSON text. */
  readonly publicKey: LoadedPublicKey | undefined;
  /** PKCS8 PEM signing key matching `publicKey`, for `ctbridge token` only. */
  readonly privateKey: LoadedText | undefined;
  /** Where the key was written, for messages: `auth.keys[0]`, `auth.secret`, `auth.publicKey`, or `CTBRIDGE_JWT_SECRET`. */
  readonly where: string;
}

export interface RelayAuthConfig {
  /** At least one key, in the order written (newest first); tokens are signed with the first that can sign. */
  readonly keys: readonly RelayAuthKey[];
  /** Agent ids and token ids (`jti`) to refuse. */
  readonly revoked: RevocationList;
  readonly audience: string;
  readonly issuer: string;
}

const AUTH_KEYS = ['keys', 'secret', 'publicKey', 'privateKey', 'audience', 'issuer', 'revoked'];
const KEY_KEYS = ['id', 'secret', 'publicKey', 'privateKey'];
const KEYS_EXAMPLE = '[{ id: "2026-11", secret: "<32 random bytes>" }]';

/** An HS256 secret: at least MIN_SECRET_LENGTH bytes, and not the template's placeholder. Never echoed. */
export function hs256Secret(where = ''): Parse<string> {
  const atLeast = secret(MIN_SECRET_LENGTH, where);
  return (v) => {
    if (typeof v === 'string' && v.trim().toUpperCase().startsWith(SECRET_PLACEHOLDER_PREFIX)) {
      throw new ValueError(`expected a secret of your own${where}, got the template's placeholder; ${GENERATE_SECRET_HINT}`);
    }
    try {
      return atLeast(v);
    } catch (err) {
      throw err instanceof ValueError && typeof v === 'string' ? new ValueError(`${err.message}; ${GENERATE_SECRET_HINT}`) : err;
    }
  };
}

/** A key id: letters, digits, ".", "_", "-"; 1 to 64 characters. */
export const keyId: Parse<string> = (v) => {
  if (typeof v === 'string' && KEY_ID_PATTERN.test(v)) return v;
  throw new ValueError(`expected a key id of 1 to 64 letters, digits, ".", "_" or "-" (such as "2026-11"), got ${formatValue(v)}`);
};

const tokenId: Parse<string> = (v) => {
  if (typeof v === 'string' && TOKEN_ID_PATTERN.test(v)) return v;
  throw new ValueError(`expected a token id as \`ctbridge token\` prints it (such as "3f9c0a1b2c3d4e5f"), got ${formatValue(v)}`);
};

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

/**
 * The key material of one key: exactly one of `secret` and `publicKey`, and
 * `privateKey` only with `publicKey` (and of the same pair). `path` is how
 * the keys are named in messages: "auth." or "auth.keys[0].".
 */
function parseKeyMaterial(s: Section, path: string): Pick<RelayAuthKey, 'secret' | 'publicKey' | 'privateKey'> {
  const baseDir = s.problems.baseDir;
  const secretValue = s.opt('secret', hs256Secret());
  const pub = s.opt('publicKey', publicKey(baseDir));
  const priv = s.opt('privateKey', signingKey(baseDir));
  if (s.has('secret') && s.has('publicKey')) {
    s.fail('', `expected exactly one of secret, publicKey, got both`);
  }
  if (s.has('privateKey') && !s.has('publicKey')) {
    s.fail('privateKey', `only used together with ${path}publicKey (to sign tokens it verifies)`);
  } else if (priv && pub && !keyPairMatches(priv.text, pub)) {
    s.fail('privateKey', `expected the private key of ${path}publicKey, got a key from another pair (${priv.file})`);
  }
  return { secret: pub ? undefined : secretValue, publicKey: pub, privateKey: pub ? priv : undefined };
}

function parseKeyList(s: Section): RelayAuthKey[] {
  const raw = s.value('keys');
  if (!Array.isArray(raw)) {
    s.fail('keys', `expected a list of keys such as ${KEYS_EXAMPLE}, got ${typeName(raw)}`);
    return [];
  }
  if (raw.length === 0) {
    s.fail('keys', `expected at least one key, such as ${KEYS_EXAMPLE}, got an empty list`);
    return [];
  }
  const out: RelayAuthKey[] = [];
  const seen = new Map<string, string>();
  raw.forEach((item: unknown, i) => {
    const where = `${s.key('keys')}[${i}]`;
    if (!isPlainObject(item)) {
      s.problems.add(where, `expected a key such as { id: "2026-11", secret: "<32 random bytes>" } or { id: "2026-11", publicKey: <file> }, got ${typeName(item)}`);
      return;
    }
    const k = new Section(s.problems, where, item, KEY_KEYS);
    const id = k.req('id', keyId, 'a key id such as "2026-11" (tokens name the key that signed them by this id)');
    if (id !== undefined) {
      const first = seen.get(id);
      if (first) k.fail('id', `expected a key id not used before, got "${id}", which ${first} already has`);
      else seen.set(id, where);
    }
    if (!k.has('secret') && !k.has('publicKey')) k.fail('', 'missing; expected secret (HS256) or publicKey (EdDSA/ES256)');
    out.push({ id, ...parseKeyMaterial(k, `${where}.`), where });
  });
  return out;
}

function parseShorthand(s: Section, env: NodeJS.ProcessEnv): RelayAuthKey[] {
  const envSecret = env[JWT_SECRET_ENV] || undefined;
  if (envSecret !== undefined) {
    if (s.has('publicKey')) {
      s.fail('publicKey', `cannot be combined with the ${JWT_SECRET_ENV} environment variable (a shared secret); unset one of them`);
      return [];
    }
    if (s.has('privateKey')) s.fail('privateKey', 'only used together with auth.publicKey (to sign tokens it verifies)');
    const value = s.check(s.key('secret'), envSecret, hs256Secret(` in the ${JWT_SECRET_ENV} environment variable`));
    return [{ id: undefined, secret: value, publicKey: undefined, privateKey: undefined, where: JWT_SECRET_ENV }];
  }
  if (!s.has('secret') && !s.has('publicKey')) {
    if (s.has('privateKey')) s.fail('privateKey', 'only used together with auth.publicKey (to sign tokens it verifies)');
    s.fail('', `missing; expected auth.keys, auth.secret (or the ${JWT_SECRET_ENV} environment variable) or auth.publicKey`);
    return [];
  }
  const material = parseKeyMaterial(s, 'auth.');
  return [{ id: undefined, ...material, where: material.publicKey ? 'auth.publicKey' : 'auth.secret' }];
}

function parseRevoked(s: Section): RevocationList {
  const r = s.section('revoked', ['agents', 'tokens']);
  return {
    agents: [...new Set(r.list('agents', text, '["acme-1"]') ?? [])],
    tokens: [...new Set(r.list('tokens', tokenId, '["3f9c0a1b2c3d4e5f"]') ?? [])],
  };
}

export function parseRelayAuth(root: Section, env: NodeJS.ProcessEnv): RelayAuthConfig {
  const s = root.section('auth', AUTH_KEYS);
  let keys: RelayAuthKey[];
  if (s.has('keys')) {
    for (const k of ['secret', 'publicKey', 'privateKey'].filter((k) => s.has(k))) {
      s.fail(k, `cannot be combined with auth.keys; list every key under auth.keys, such as { id: "2026-11", ${k}: ... }`);
    }
    if (env[JWT_SECRET_ENV]) {
      s.fail('keys', `cannot be combined with the ${JWT_SECRET_ENV} environment variable (a single secret without an id); move that secret into auth.keys with an id, or unset the variable`);
    }
    keys = parseKeyList(s);
  } else {
    keys = parseShorthand(s, env);
  }
  return {
    keys,
    revoked: parseRevoked(s),
    audience: s.get('audience', text, 'ctbridge'),
    issuer: s.get('issuer', text, 'ctbridge'),
  };
}

/** The key `ctbridge token` signs with: the first that can sign (a secret, or a public key with its privateKey). */
export function signingKeyOf(auth: RelayAuthConfig): RelayAuthKey | undefined {
  return auth.keys.find((k) => k.secret !== undefined || k.privateKey !== undefined);
}
