import { SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../src/errors.js';
import {
  TokenError, createTokenVerifier, decodeTokenUnverified, signAgentToken, type TokenFailureReason,
} from '../../src/token.js';

const SECRET = 'test-secret-0123456789abcdef0123456789';
const OPTS = { issuer: 'ctbridge', audience: 'ctbridge' };
const DAY = 24 * 3600 * 1000;
const now = () => Math.floor(Date.now() / 1000);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Every error seen, to check none leaks a token or a secret. */
const seen: { err: TokenError; secrets: string[] }[] = [];

async function rejects(verify: Promise<unknown>, reason: TokenFailureReason, secrets: string[]): Promise<TokenError> {
  const err = await verify.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TokenError);
  const te = err as TokenError;
  expect(te).toBeInstanceOf(CtbridgeError);
  expect(te.code).toBe('CTB_TOKEN_INVALID');
  expect(te.status).toBe(401);
  expect(te.reason).toBe(reason);
  seen.push({ err: te, secrets });
  return te;
}

/** A HS256 token with arbitrary claims (valid ones by default). */
function rawToken(claims: JWTPayload, secret = SECRET): Promise<string> {
  return new SignJWT({ sub: 'acme-1', tunnels: ['cioc'], iss: 'ctbridge', aud: 'ctbridge', iat: now(), exp: now() + 3600, ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret));
}

describe('HS256', () => {
  const verifier = createTokenVerifier({ secret: SECRET }, OPTS);

  it('signs and verifies', async () => {
    const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc', 'uc'], ttlMs: 365 * DAY, key: { secret: SECRET } });
    const claims = await verifier.verify(token);
    expect(claims.agentId).toBe('acme-1');
    expect(claims.tunnels).toEqual(['cioc', 'uc']);
    expect(Math.abs(claims.expiresAt.getTime() - (Date.now() + 365 * DAY))).toBeLessThan(5000);
  });

  it('puts a random jti, iat, iss and aud in every token', async () => {
    const sign = () => signAgentToken({ agentId: 'a', tunnels: ['t'], ttlMs: DAY, key: { secret: SECRET } });
    const [a, b] = await Promise.all([sign(), sign()]);
    const pa = JSON.parse(Buffer.from(a.split('.')[1], 'base64url').toString()) as JWTPayload;
    const pb = JSON.parse(Buffer.from(b.split('.')[1], 'base64url').toString()) as JWTPayload;
    expect(pa).toMatchObject({ iss: 'ctbridge', aud: 'ctbridge', sub: 'a', tunnels: ['t'] });
    expect(typeof pa.iat).toBe('number');
    expect(pa.jti).toBeTruthy();
    expect(pa.jti).not.toBe(pb.jti);
  });

  it('rejects a wrong secret', async () => {
    const token = await rawToken({}, 'another-secret-another-secret-xx');
    await rejects(verifier.verify(token), 'bad_signature', [token, SECRET, 'another-secret-another-secret-xx']);
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await rawToken({})).split('.');
    const forged = `${h}.${b64({ sub: 'acme-1', tunnels: ['cioc', 'admin'], iss: 'ctbridge', aud: 'ctbridge', exp: now() + 3600 })}.${s}`;
    await rejects(verifier.verify(forged), 'bad_signature', [forged, SECRET]);
  });

  it('rejects alg none', async () => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'acme-1', tunnels: ['cioc'], iss: 'ctbridge', aud: 'ctbridge', exp: now() + 3600 })}.`;
    const err = await rejects(verifier.verify(token), 'bad_signature', [token, SECRET]);
    expect(err.message).toBe('agent token is signed with "none", this relay accepts only HS256');
  });

  it('rejects an expired token, naming when it expired', async () => {
    const exp = Date.parse('2026-01-02T03:04:05Z') / 1000;
    const token = await rawToken({ iat: exp - 3600, exp });
    const err = await rejects(verifier.verify(token), 'expired', [token, SECRET]);
    expect(err.message).toBe('agent token expired at 2026-01-02T03:04:05Z');
    expect(err.hint).toContain('ctbridge token --config relay.yaml --agent acme-1 --tunnels cioc --ttl 90d');
    expect(err.hint).toContain('CTBRIDGE_AGENT_TOKEN');
  });

  it('tolerates small clock skew', async () => {
    await expect(verifier.verify(await rawToken({ exp: now() - 10 }))).resolves.toMatchObject({ agentId: 'acme-1' });
  });

  it('rejects a token not valid yet', async () => {
    const token = await rawToken({ nbf: now() + 3600 });
    await rejects(verifier.verify(token), 'not_yet_valid', [token, SECRET]);
  });

  it('rejects a wrong audience or issuer', async () => {
    const aud = await rawToken({ aud: 'x' });
    const errAud = await rejects(verifier.verify(aud), 'wrong_audience', [aud, SECRET]);
    expect(errAud.message).toBe('agent token is for audience "x", this relay expects "ctbridge"');
    const iss = await rawToken({ iss: 'other-relay' });
    const errIss = await rejects(verifier.verify(iss), 'wrong_issuer', [iss, SECRET]);
    expect(errIss.message).toBe('agent token was issued by "other-relay", this relay expects "ctbridge"');
    const noAud = await rawToken({ aud: undefined });
    await rejects(verifier.verify(noAud), 'wrong_audience', [noAud, SECRET]);
  });

  it('rejects missing or bad claims', async () => {
    for (const claims of [{ tunnels: undefined }, { tunnels: [] }, { tunnels: 'cioc' }, { sub: undefined }, { exp: undefined }]) {
      const token = await rawToken(claims);
      await rejects(verifier.verify(token), 'bad_claims', [token, SECRET]);
    }
    const err = await rejects(verifier.verify(await rawToken({ tunnels: undefined })), 'bad_claims', [SECRET]);
    expect(err.message).toContain('"tunnels"');
  });

  it('rejects missing and malformed tokens', async () => {
    await rejects(verifier.verify(undefined), 'missing', [SECRET]);
    await rejects(verifier.verify(''), 'missing', [SECRET]);
    for (const t of ['not-a-jwt', 'a.b.c', 'a.b', `${b64({ alg: 'HS256' }).slice(0, 10)}.e30.AAAA`]) {
      await rejects(verifier.verify(t), 'malformed', [t, SECRET]);
    }
  });
});

describe.each(['Ed25519', 'ES256'] as const)('%s key pair', (alg) => {
  const keys = (async () => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', use: 'sig' };
    return { privateKeyPem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey), jwks: JSON.stringify({ keys: [jwk] }) };
  })();
  const sign = async (tunnels = ['cioc']) => signAgentToken({ agentId: 'acme-1', tunnels, ttlMs: DAY, key: { privateKeyPem: (await keys).privateKeyPem } });

  it('verifies with the PEM public key and with a JWKS', async () => {
    const k = await keys;
    const token = await sign();
    expect(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString())).toMatchObject({ alg: alg === 'ES256' ? 'ES256' : 'EdDSA' });
    for (const publicKey of [k.publicPem, k.jwks]) {
      await expect(createTokenVerifier({ publicKey }, OPTS).verify(token)).resolves.toMatchObject({ agentId: 'acme-1', tunnels: ['cioc'] });
    }
  });

  it('rejects tampering, foreign keys and HS256 signed with the public key', async () => {
    const k = await keys;
    const verifier = createTokenVerifier({ publicKey: k.publicPem }, OPTS);
    const [h, , s] = (await sign()).split('.');
    const forged = `${h}.${b64({ sub: 'acme-1', tunnels: ['admin'], iss: 'ctbridge', aud: 'ctbridge', exp: now() + 60 })}.${s}`;
    await rejects(verifier.verify(forged), 'bad_signature', [forged, k.privateKeyPem]);
    const other = await generateKeyPair(alg, { extractable: true });
    const foreign = await signAgentToken({ agentId: 'x', tunnels: ['t'], ttlMs: DAY, key: { privateKeyPem: await exportPKCS8(other.privateKey) } });
    await rejects(verifier.verify(foreign), 'bad_signature', [foreign]);
    await rejects(createTokenVerifier({ publicKey: k.jwks }, OPTS).verify(foreign), 'bad_signature', [foreign]);
    const confused = await rawToken({}, k.publicPem);
    await rejects(verifier.verify(confused), 'bad_signature', [confused]);
    await rejects(createTokenVerifier({ publicKey: k.jwks }, OPTS).verify(confused), 'bad_signature', [confused]);
  });

  it('refuses a configured alg that does not fit the key', async () => {
    const wrong = alg === 'ES256' ? 'EdDSA' : 'ES256';
    await expect(signAgentToken({ agentId: 'a', tunnels: ['t'], ttlMs: DAY, key: { privateKeyPem: (await keys).privateKeyPem, alg: wrong } }))
      .rejects.toMatchObject({ code: 'CTB_CONFIG_INVALID' });
  });
});

describe('key configuration errors', () => {
  it('throws CTB_CONFIG_INVALID for unusable keys without echoing them', async () => {
    for (const publicKey of ['garbage', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', '{"nope":1}']) {
      let err: unknown;
      try { createTokenVerifier({ publicKey }, OPTS); } catch (e) { err = e; }
      expect(err).toMatchObject({ code: 'CTB_CONFIG_INVALID' });
      expect((err as Error).message).not.toContain(publicKey);
    }
    expect(() => createTokenVerifier({ secret: '' }, OPTS)).toThrow(CtbridgeError);
    await expect(signAgentToken({ agentId: 'a', tunnels: ['t'], ttlMs: DAY, key: { privateKeyPem: 'nope' } })).rejects.toMatchObject({ code: 'CTB_CONFIG_INVALID' });
    await expect(signAgentToken({ agentId: 'a', tunnels: [], ttlMs: DAY, key: { secret: SECRET } })).rejects.toThrow(/at least one tunnel/);
  });
});

describe('decodeTokenUnverified', () => {
  it('reads agent id, tunnels and expiry, and flags tokens expiring within 14 days', async () => {
    const soon = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: 3 * DAY, key: { secret: SECRET } });
    expect(decodeTokenUnverified(soon)).toMatchObject({ agentId: 'acme-1', tunnels: ['cioc'], expiresSoon: true });
    const later = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: 365 * DAY, key: { secret: SECRET } });
    const claims = decodeTokenUnverified(later);
    expect(claims.expiresSoon).toBe(false);
    expect(claims.expiresAt.getTime()).toBeGreaterThan(Date.now() + 364 * DAY);
  });

  it('throws TokenError for garbage', () => {
    expect(() => decodeTokenUnverified('garbage')).toThrow(TokenError);
  });
});

describe('error messages', () => {
  it('never contain the token or the secret', () => {
    expect(seen.length).toBeGreaterThan(20);
    for (const { err, secrets } of seen) {
      for (const s of secrets) {
        expect(err.userMessage).not.toContain(s);
        expect(String(err.stack)).not.toContain(s);
      }
    }
  });
});
