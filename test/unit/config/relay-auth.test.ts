/**
 * relay.yaml auth: several keys with ids (auth.keys), the revocation list
 * (auth.revoked), and secrets that are long enough and not the template's
 * placeholder. Every problem names the key path and what was expected.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeRelayConfig } from '../../../src/config/describe.js';
import { MIN_SECRET_LENGTH, signingKeyOf } from '../../../src/config/relay-auth.js';
import { parseRelayConfig } from '../../../src/config/relay-config.js';
import { ConfigErrors } from '../../../src/errors.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const NO_ENV = {};
const A = 'secret-a-0123456789abcdef-0123456789';
const B = 'secret-b-0123456789abcdef-0123456789';
const parse = (auth: unknown, env: NodeJS.ProcessEnv = NO_ENV) => parseRelayConfig({ auth }, 'relay.yaml', env, { baseDir: FIXTURES });

function problems(auth: unknown, env: NodeJS.ProcessEnv = NO_ENV): string[] {
  try {
    parse(auth, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    return (err as ConfigErrors).errors.map((e) => e.message);
  }
  throw new Error('expected ConfigErrors');
}

describe('auth.keys', () => {
  it('keeps the keys in order, each with its id; the first that can sign signs', () => {
    const auth = parse({
      keys: [
        { id: '2027-02', publicKey: 'tls/token-verify.pub' },
        { id: '2026-11', secret: A },
        { id: 'jwks.1', publicKey: 'tls/token-verify.jwks.json', privateKey: 'tls/token-signing.key' },
      ],
    }).auth;
    expect(auth.keys.map((k) => [k.id, k.where, k.secret !== undefined, k.publicKey?.format, k.privateKey !== undefined])).toEqual([
      ['2027-02', 'auth.keys[0]', false, 'spki', false],
      ['2026-11', 'auth.keys[1]', true, undefined, false],
      ['jwks.1', 'auth.keys[2]', false, 'jwks', true],
    ]);
    expect(signingKeyOf(auth)?.id).toBe('2026-11');
    expect(signingKeyOf(parse({ keys: [{ id: 'v', publicKey: 'tls/token-verify.pub' }] }).auth)).toBeUndefined();
  });

  it('names every problem with its list index', () => {
    expect(problems({
      keys: [
        { id: 'ok', secret: A },
        { id: 'ok', secret: B },
        { secret: B },
        { id: 'has space', secret: B },
        { id: 'x'.repeat(65), secret: B },
        { id: 'both', secret: B, publicKey: 'tls/token-verify.pub' },
        { id: 'neither' },
        { id: 'typo', secrt: B },
        { id: 'priv', secret: B, privateKey: 'tls/token-signing.key' },
        { id: 'pair', publicKey: 'tls/token-verify.pub', privateKey: 'tls/token-other.key' },
        'just-a-string',
      ],
    })).toEqual([
      'relay.yaml: auth.keys[1].id: expected a key id not used before, got "ok", which auth.keys[0] already has',
      'relay.yaml: auth.keys[2].id: missing; expected a key id such as "2026-11" (tokens name the key that signed them by this id)',
      'relay.yaml: auth.keys[3].id: expected a key id of 1 to 64 letters, digits, ".", "_" or "-" (such as "2026-11"), got "has space"',
      `relay.yaml: auth.keys[4].id: expected a key id of 1 to 64 letters, digits, ".", "_" or "-" (such as "2026-11"), got "${'x'.repeat(65)}"`,
      'relay.yaml: auth.keys[5]: expected exactly one of secret, publicKey, got both',
      'relay.yaml: auth.keys[6]: missing; expected secret (HS256) or publicKey (EdDSA/ES256)',
      'relay.yaml: auth.keys[7].secrt: unknown key (did you mean "secret"?)',
      'relay.yaml: auth.keys[7]: missing; expected secret (HS256) or publicKey (EdDSA/ES256)',
      'relay.yaml: auth.keys[8].privateKey: only used together with auth.keys[8].publicKey (to sign tokens it verifies)',
      `relay.yaml: auth.keys[9].privateKey: expected the private key of auth.keys[9].publicKey, got a key from another pair (${join(FIXTURES, 'tls/token-other.key')})`,
      'relay.yaml: auth.keys[10]: expected a key such as { id: "2026-11", secret: "<32 random bytes>" } or { id: "2026-11", publicKey: <file> }, got a string',
    ]);
  });

  it('needs at least one key, in a list', () => {
    expect(problems({ keys: [] })).toEqual([
      'relay.yaml: auth.keys: expected at least one key, such as [{ id: "2026-11", secret: "<32 random bytes>" }], got an empty list',
    ]);
    expect(problems({ keys: { id: 'a', secret: A } })).toEqual([
      'relay.yaml: auth.keys: expected a list of keys such as [{ id: "2026-11", secret: "<32 random bytes>" }], got a mapping',
    ]);
  });

  it('cannot be mixed with the shorthand or CTBRIDGE_JWT_SECRET, naming both', () => {
    expect(problems({ keys: [{ id: 'a', secret: A }], secret: B, publicKey: 'tls/token-verify.pub' })).toEqual([
      'relay.yaml: auth.secret: cannot be combined with auth.keys; list every key under auth.keys, such as { id: "2026-11", secret: ... }',
      'relay.yaml: auth.publicKey: cannot be combined with auth.keys; list every key under auth.keys, such as { id: "2026-11", publicKey: ... }',
    ]);
    expect(problems({ keys: [{ id: 'a', secret: A }] }, { CTBRIDGE_JWT_SECRET: B })).toEqual([
      'relay.yaml: auth.keys: cannot be combined with the CTBRIDGE_JWT_SECRET environment variable (a single secret without an id); move that secret into auth.keys with an id, or unset the variable',
    ]);
  });

  it('is described by relay verify, secrets masked', () => {
    const text = describeRelayConfig(parseRelayConfig({
      auth: { keys: [{ id: 'new', secret: A }, { id: 'old', publicKey: 'tls/token-verify.pub' }], revoked: { agents: ['acme-9'], tokens: ['0123456789abcdef'] } },
    }, 'relay.yaml', NO_ENV, { baseDir: FIXTURES }));
    expect(text).toContain(`auth: keys new (HS256 shared secret ****, signs new tokens), old (public key ${join(FIXTURES, 'tls/token-verify.pub')} (EdDSA/ES256)); audience ctbridge, issuer ctbridge; revoked agents: acme-9; revoked tokens: 0123456789abcdef`);
    expect(text).not.toContain(A);
  });
});

describe('auth.revoked', () => {
  it('defaults to nothing revoked, and takes agent ids and token ids (deduplicated)', () => {
    expect(parse({ secret: A }).auth.revoked).toEqual({ agents: [], tokens: [] });
    expect(parse({ secret: A, revoked: {} }).auth.revoked).toEqual({ agents: [], tokens: [] });
    const uuid = '0b8e4f3c-6a5d-4c2b-9e1f-3a7d5c9b2e4f'; // tokens issued before 16-hex ids had a UUID jti
    expect(parse({ secret: A, revoked: { agents: ['acme-1', 'acme-1', 'site b'], tokens: ['3f9c0a1b2c3d4e5f', uuid] } }).auth.revoked)
      .toEqual({ agents: ['acme-1', 'site b'], tokens: ['3f9c0a1b2c3d4e5f', uuid] });
  });

  it('names bad entries', () => {
    expect(problems({ secret: A, revoked: { agents: 'acme-1', tokens: ['ok', 'not a token id', 7], users: [] } })).toEqual([
      'relay.yaml: auth.revoked.users: unknown key (known keys: agents, tokens)',
      'relay.yaml: auth.revoked.agents: expected a list such as ["acme-1"], got "acme-1"',
      'relay.yaml: auth.revoked.tokens[1]: expected a token id as `ctbridge token` prints it (such as "3f9c0a1b2c3d4e5f"), got "not a token id"',
      'relay.yaml: auth.revoked.tokens[2]: expected a token id as `ctbridge token` prints it (such as "3f9c0a1b2c3d4e5f"), got 7',
    ]);
  });
});

describe('secrets', () => {
  it(`need at least ${MIN_SECRET_LENGTH} bytes of UTF-8, counted in bytes`, () => {
    expect(MIN_SECRET_LENGTH).toBe(32);
    expect(problems({ secret: 'x'.repeat(31) })).toEqual([
      'relay.yaml: auth.secret: expected a string of at least 32 bytes, got a shorter string; generate one with `openssl rand -base64 32`',
    ]);
    expect(parse({ secret: 'x'.repeat(32) }).auth.keys[0]?.secret).toHaveLength(32);
    // 16 characters, 32 bytes: "é" is two bytes in UTF-8.
    expect(parse({ secret: 'é'.repeat(16) }).auth.keys[0]?.secret).toBe('é'.repeat(16));
    expect(problems({ keys: [{ id: 'k', secret: 'short' }] })).toEqual([
      'relay.yaml: auth.keys[0].secret: expected a string of at least 32 bytes, got a shorter string; generate one with `openssl rand -base64 32`',
    ]);
  });

  it("refuse the template's placeholder, in any case, in the file, in a key or in the environment", () => {
    const message = "expected a secret of your own, got the template's placeholder; generate one with `openssl rand -base64 32`";
    expect(problems({ secret: 'REPLACE-ME-with-32-random-characters' })).toEqual([`relay.yaml: auth.secret: ${message}`]);
    expect(problems({ secret: 'replace-me-0123456789abcdef-0123456789' })).toEqual([`relay.yaml: auth.secret: ${message}`]);
    expect(problems({ keys: [{ id: 'k', secret: 'Replace-Me' }] })).toEqual([`relay.yaml: auth.keys[0].secret: ${message}`]);
    expect(problems({}, { CTBRIDGE_JWT_SECRET: 'REPLACE-ME-with-32-random-characters' })).toEqual([
      "relay.yaml: auth.secret: expected a secret of your own in the CTBRIDGE_JWT_SECRET environment variable, got the template's placeholder; generate one with `openssl rand -base64 32`",
    ]);
  });

  it('are never echoed', () => {
    const secret = 'REPLACE-ME-but-still-a-secret-value';
    for (const auth of [{ secret }, { secret: secret.slice(0, 20) }, { keys: [{ id: 'k', secret: secret.slice(10, 25) }] }]) {
      expect(problems(auth).join('\n')).not.toMatch(/but-still|still-a-secret/);
    }
  });
});

describe('auth.publicKey as a JWKS', () => {
  it('needs at least one Ed25519 or P-256 key in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-jwks-'));
    const file = join(dir, 'rsa-only.jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }, { kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA' }] }));
    expect(problems({ keys: [{ id: 'j', publicKey: file }] })).toEqual([
      `relay.yaml: auth.keys[0].publicKey: expected a JWKS with an Ed25519 or P-256 key (for EdDSA or ES256), got none in ${file}`,
    ]);
    expect(parse({ publicKey: 'tls/token-verify.jwks.json' }).auth.keys[0]?.publicKey?.format).toBe('jwks');
  });
});
