import { createHmac } from 'node:crypto';
import {
  SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, jwtVerify, type JWTPayload,
} from 'jose';
import { describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../src/errors.js';
import {
  DEFAULT_TOKEN_TTL, TokenError, createTokenVerifier, decodeTokenUnverified, keyFingerprints, revocationReason, signAgentToken,
  type TokenFailureReason, type VerificationKey,
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

/** A HS256 token with arbitrary claims (valid ones by default), and a `kid` header if given. */
function rawToken(claims: JWTPayload, secret = SECRET, kid?: string): Promise<string> {
  return new SignJWT({ sub: 'acme-1', tunnels: ['cioc'], iss: 'ctbridge', aud: 'ctbridge', iat: now(), exp: now() + 3600, ...claims })
    .setProtectedHeader(kid === undefined ? { alg: 'HS256' } : { alg: 'HS256', kid })
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
    expect(pa.jti).toMatch(/^[0-9a-f]{16}$/);
    expect(pa.jti).not.toBe(pb.jti);
  });

  it('exposes token id, key id, expiry and issue time in the verified claims', async () => {
    const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { secret: SECRET } });
    const claims = await verifier.verify(token);
    const payload = decodeJwt(token);
    expect(claims.tokenId).toBe(payload.jti);
    expect(claims.keyId).toBeUndefined(); // a key without an id puts no kid in the header
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(claims.expiresAt.getTime()).toBe(payload.exp! * 1000);
    expect(claims.issuedAt?.getTime()).toBe(payload.iat! * 1000);
    expect(claims).toMatchObject({ issuer: 'ctbridge', audience: 'ctbridge', verifiedBy: keyFingerprints({ secret: SECRET })[0] });
  });

  it('accepts an old token without jti: tokenId is undefined', async () => {
    const token = await rawToken({});
    expect(decodeJwt(token).jti).toBeUndefined();
    await expect(verifier.verify(token)).resolves.toMatchObject({ agentId: 'acme-1', tokenId: undefined, keyId: undefined });
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
    await expect(verifier.verify(await rawToken({ exp: now() - 3 }))).resolves.toMatchObject({ agentId: 'acme-1' });
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

/** A HS256-signed token with any header (signed with node:crypto, so headers jose's SignJWT refuses can be tested). */
function hmacToken(header: object, claims: JWTPayload, secret = SECRET): string {
  const body = `${b64(header)}.${b64({ sub: 'acme-1', tunnels: ['cioc'], iss: 'ctbridge', aud: 'ctbridge', iat: now(), exp: now() + 3600, ...claims })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

// HS256 signatures are checked with node:crypto, the claims by jose (src/token/verify.ts verifyHs256): each refusal, and the
// same verdict as jose's own jwtVerify on the same tokens.
describe('HS256 without WebCrypto (verifyHs256)', () => {
  const verifier = createTokenVerifier({ secret: SECRET }, OPTS);

  it('refuses a bad signature: another secret, another token\'s, truncated, padded, empty', async () => {
    const good = await rawToken({});
    const [h, p, s] = good.split('.');
    const other = (await rawToken({ sub: 'acme-2' })).split('.')[2];
    for (const t of [await rawToken({}, 'another-secret-another-secret-xx'), `${h}.${p}.${other}`, `${h}.${p}.${s.slice(0, -1)}`, `${h}.${p}.${s}=`, `${h}.${p}.`]) {
      await rejects(verifier.verify(t), 'bad_signature', [t, SECRET]);
    }
  });

  it('refuses alg none, even with a valid HMAC, and alg confusion (an asymmetric alg against a secret)', async () => {
    for (const alg of ['none', 'None', 'EdDSA', 'ES256', 'HS512', 'RS256']) {
      const t = hmacToken({ alg, typ: 'JWT' }, {});
      const err = await rejects(verifier.verify(t), 'bad_signature', [t, SECRET]);
      expect(err.message).toBe(`agent token is signed with "${alg}", this relay accepts only HS256`);
    }
  });

  it('refuses exp, nbf, aud and iss as jose does, with the clock tolerance', async () => {
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { exp: now() - 60 })), 'expired', [SECRET]);
    await expect(verifier.verify(hmacToken({ alg: 'HS256' }, { exp: now() - 2 }))).resolves.toMatchObject({ agentId: 'acme-1' });
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { nbf: now() + 60 })), 'not_yet_valid', [SECRET]);
    await expect(verifier.verify(hmacToken({ alg: 'HS256' }, { nbf: now() + 2 }))).resolves.toMatchObject({ agentId: 'acme-1' });
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { aud: 'x' })), 'wrong_audience', [SECRET]);
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { aud: ['x', 'y'] })), 'wrong_audience', [SECRET]);
    await expect(verifier.verify(hmacToken({ alg: 'HS256' }, { aud: ['x', 'ctbridge'] }))).resolves.toMatchObject({ agentId: 'acme-1' });
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { iss: 'x' })), 'wrong_issuer', [SECRET]);
    await rejects(verifier.verify(hmacToken({ alg: 'HS256' }, { exp: 'soon' as unknown as number })), 'bad_claims', [SECRET]);
  });

  it('refuses crit extensions and an unencoded payload (jose\'s header checks), and a signed payload that is not JSON', async () => {
    for (const header of [{ alg: 'HS256', crit: ['x-ext'], 'x-ext': 1 }, { alg: 'HS256', crit: ['b64'], b64: false }, { alg: 'HS256', crit: [] }]) {
      const t = hmacToken(header, {});
      await rejects(verifier.verify(t), 'malformed', [t, SECRET]);
    }
    const body = `${b64({ alg: 'HS256' })}.${Buffer.from('not json').toString('base64url')}`;
    const t = `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
    await rejects(verifier.verify(t), 'malformed', [t, SECRET]);
    await rejects(verifier.verify(`${t}.extra`), 'malformed', [t, SECRET]);
  });

  it('gives the same verdict as jose\'s jwtVerify', async () => {
    const s = now();
    const tokens = [
      await rawToken({}), await rawToken({}, 'another-secret-another-secret-xx'), await rawToken({ exp: s - 60 }), await rawToken({ exp: s - 2 }),
      await rawToken({ nbf: s + 60 }), await rawToken({ aud: 'x' }), await rawToken({ iss: 'x' }), await rawToken({ iat: s + 3600 }),
      hmacToken({ alg: 'none' }, {}), hmacToken({ alg: 'HS256', crit: ['x-ext'], 'x-ext': 1 }, {}), hmacToken({ alg: 'HS256', typ: 'JWT' }, {}),
    ];
    const secret = new TextEncoder().encode(SECRET);
    for (const t of tokens) {
      const ours = await verifier.verify(t).then(() => 'accepted', () => 'refused');
      const theirs = await jwtVerify(t, secret, { algorithms: ['HS256'], issuer: 'ctbridge', audience: 'ctbridge', clockTolerance: 5 }).then(() => 'accepted', () => 'refused');
      expect({ t, ours }).toEqual({ t, ours: theirs });
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

const NEW = 'new-secret-0123456789abcdef-0123456789';
const OLD = 'old-secret-0123456789abcdef-0123456789';

describe('several keys (rotation)', () => {
  const keys: VerificationKey[] = [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }];
  const verifier = createTokenVerifier(keys, OPTS);

  it('writes the signing key id as kid and verifies against that key', async () => {
    const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2027-02', secret: NEW } });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT', kid: '2027-02' });
    const claims = await verifier.verify(token);
    expect(claims).toMatchObject({ agentId: 'acme-1', keyId: '2027-02', verifiedBy: keyFingerprints({ secret: NEW })[0] });
    expect(verifier.keyIds).toEqual(['2027-02', '2026-11']);
  });

  it('still accepts tokens signed with the older key, by kid', async () => {
    const token = await signAgentToken({ agentId: 'acme-2', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2026-11', secret: OLD } });
    await expect(verifier.verify(token)).resolves.toMatchObject({ agentId: 'acme-2', keyId: '2026-11', verifiedBy: keyFingerprints({ secret: OLD })[0] });
  });

  it('tries every key for a token without kid (issued before key ids)', async () => {
    for (const secret of [NEW, OLD]) {
      const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { secret } });
      await expect(verifier.verify(token)).resolves.toMatchObject({ keyId: undefined, verifiedBy: keyFingerprints({ secret })[0] });
    }
    const foreign = await rawToken({}, 'a-third-secret-0123456789abcdef-012345');
    const err = await rejects(verifier.verify(foreign), 'bad_signature', [foreign, NEW, OLD]);
    expect(err.message).toBe("agent token signature does not match this relay's key (tampered with, or issued with another secret or key)");
  });

  it('checks a token with kid against that key only', async () => {
    // Signed with the old secret but naming the new key: the old key is not tried.
    const token = await rawToken({}, OLD, '2027-02');
    const err = await rejects(verifier.verify(token), 'bad_signature', [token, NEW, OLD]);
    expect(err.message).toBe('agent token signature does not match key "2027-02" of this relay (tampered with, or issued with another key of that id)');
  });

  it('refuses an unknown kid, naming it and the known ids', async () => {
    const token = await rawToken({}, OLD, '2025-01');
    const err = await rejects(verifier.verify(token), 'unknown_key', [token, NEW, OLD]);
    expect(err.message).toBe('agent token names key "2025-01", which this relay does not have (key ids in relay.yaml: 2027-02, 2026-11)');
    expect(err.hint).toContain('auth.keys');
    expect(err.hint).toContain('ctbridge token');
    const none = createTokenVerifier({ secret: OLD }, { ...OPTS, configName: 'edge.yaml' });
    const err2 = await rejects(none.verify(token), 'unknown_key', [token, OLD]);
    expect(err2.message).toBe('agent token names key "2025-01", which this relay does not have (key ids in edge.yaml: none)');
  });

  it('shows a hostile kid sanitized and capped', async () => {
    const token = await rawToken({}, OLD, `x\u001b[31m${'k'.repeat(500)}`);
    const err = await rejects(verifier.verify(token), 'unknown_key', [token]);
    expect(err.message).not.toContain('\u001b');
    expect(err.message.length).toBeLessThan(250);
  });

  it('mixes HS256 and key-pair keys without letting one stand in for the other', async () => {
    const pair = await generateKeyPair('Ed25519', { extractable: true });
    const publicPem = await exportSPKI(pair.publicKey);
    const mixed = createTokenVerifier([{ id: 'ed', publicKey: publicPem }, { id: 'hs', secret: OLD }], OPTS);
    const ed = await signAgentToken({ agentId: 'a', tunnels: ['t'], ttlMs: DAY, key: { id: 'ed', privateKeyPem: await exportPKCS8(pair.privateKey) } });
    await expect(mixed.verify(ed)).resolves.toMatchObject({ keyId: 'ed' });
    const hsNamingEd = await rawToken({}, OLD, 'ed');
    const err = await rejects(mixed.verify(hsNamingEd), 'bad_signature', [hsNamingEd, OLD]);
    expect(err.message).toBe('agent token is signed with "HS256", this relay accepts only EdDSA for key "ed"');
    await expect(mixed.verify(await rawToken({}, OLD))).resolves.toMatchObject({ keyId: undefined });
  });

  it('matches a kid to a key inside a JWKS when no configured key has that id', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-7' }] });
    const v = createTokenVerifier([{ secret: OLD }, { publicKey: jwks }], OPTS);
    const token = await new SignJWT({ tunnels: ['t'] }).setProtectedHeader({ alg: 'ES256', kid: 'idp-7' }).setSubject('x')
      .setIssuer('ctbridge').setAudience('ctbridge').setExpirationTime('1h').sign(pair.privateKey);
    await expect(v.verify(token)).resolves.toMatchObject({ agentId: 'x', keyId: 'idp-7' });
    // The same key in PEM and in a JWKS has the same fingerprint.
    expect(keyFingerprints({ publicKey: jwks })).toEqual(keyFingerprints({ publicKey: await exportSPKI(pair.publicKey) }));
  });

  it('refuses duplicate key ids, an empty key list and a bad signing key id', async () => {
    expect(() => createTokenVerifier([{ id: 'a', secret: NEW }, { id: 'a', secret: OLD }], OPTS)).toThrow(/key id "a" is used by more than one key/);
    expect(() => createTokenVerifier([], OPTS)).toThrow(CtbridgeError);
    await expect(signAgentToken({ agentId: 'a', tunnels: ['t'], ttlMs: DAY, key: { id: 'bad id', secret: NEW } })).rejects.toMatchObject({ code: 'CTB_CONFIG_INVALID' });
  });
});

describe('revocation', () => {
  const revoked = { agents: ['acme-9'], tokens: ['0123456789abcdef'] };

  it('revocationReason names the agent or the token and where it is revoked', () => {
    expect(revocationReason({ agentId: 'acme-9', tokenId: undefined }, revoked)).toBe("agent 'acme-9' is revoked in auth.revoked.agents of relay.yaml");
    expect(revocationReason({ agentId: 'acme-1', tokenId: '0123456789abcdef' }, revoked, 'edge.yaml'))
      .toBe("token 0123456789abcdef of agent 'acme-1' is revoked in auth.revoked.tokens of edge.yaml");
    expect(revocationReason({ agentId: 'acme-1', tokenId: 'fedcba9876543210' }, revoked)).toBeUndefined();
    expect(revocationReason({ agentId: 'acme-1', tokenId: undefined }, revoked)).toBeUndefined();
    expect(revocationReason({ agentId: 'acme-9', tokenId: undefined }, undefined)).toBeUndefined();
  });

  it('the verifier refuses a revoked agent and a revoked token id with CTB_TOKEN_INVALID and that reason', async () => {
    const verifier = createTokenVerifier({ secret: SECRET }, { ...OPTS, revoked });
    const byAgent = await signAgentToken({ agentId: 'acme-9', tunnels: ['cioc'], ttlMs: DAY, key: { secret: SECRET } });
    const err = await rejects(verifier.verify(byAgent), 'revoked', [byAgent, SECRET]);
    expect(err.message).toBe("agent 'acme-9' is revoked in auth.revoked.agents of relay.yaml");
    expect(err.hint).toMatch(/revoked/);
    const byToken = await rawToken({ jti: '0123456789abcdef' });
    const err2 = await rejects(verifier.verify(byToken), 'revoked', [byToken, SECRET]);
    expect(err2.message).toBe("token 0123456789abcdef of agent 'acme-1' is revoked in auth.revoked.tokens of relay.yaml");
    await expect(verifier.verify(await rawToken({ jti: 'another-token-id' }))).resolves.toMatchObject({ tokenId: 'another-token-id' });
  });
});

describe('recheck (a live connection after a config reload)', () => {
  const keys: VerificationKey[] = [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }];

  it('keeps claims that still hold, under an equal or another verifier', async () => {
    const first = createTokenVerifier(keys, OPTS);
    const claims = await first.verify(await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2026-11', secret: OLD } }));
    expect(first.recheck(claims)).toBeUndefined();
    expect(createTokenVerifier([...keys].reverse(), OPTS).recheck(claims)).toBeUndefined();
  });

  it('says why claims no longer hold: key removed, key replaced, revoked, expired, issuer or audience changed', async () => {
    const v = createTokenVerifier(keys, OPTS);
    const byOld = await v.verify(await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2026-11', secret: OLD } }));
    const keyless = await v.verify(await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { secret: OLD } }));

    const removed = createTokenVerifier([{ id: '2027-02', secret: NEW }], OPTS);
    expect(removed.recheck(byOld)).toMatchObject({ reason: 'unknown_key', message: 'agent token names key "2026-11", which this relay does not have (key ids in relay.yaml: 2027-02)' });
    expect(removed.recheck(keyless)).toMatchObject({ reason: 'unknown_key', message: 'the key that signed the agent token is no longer in relay.yaml' });

    const replaced = createTokenVerifier([{ id: '2026-11', secret: NEW }], OPTS);
    expect(replaced.recheck(byOld)).toMatchObject({ reason: 'unknown_key', message: 'the key that signed the agent token ("2026-11") is no longer in relay.yaml' });

    const revoked = createTokenVerifier(keys, { ...OPTS, revoked: { agents: [], tokens: [byOld.tokenId!] } });
    expect(revoked.recheck(byOld)).toMatchObject({ code: 'CTB_TOKEN_INVALID', reason: 'revoked', message: `token ${byOld.tokenId} of agent 'acme-1' is revoked in auth.revoked.tokens of relay.yaml` });
    expect(revoked.recheck(keyless)).toBeUndefined();

    const later = new Date(byOld.expiresAt.getTime() + 31_000);
    expect(v.recheck(byOld, later)).toMatchObject({ reason: 'expired', message: expect.stringMatching(/^agent token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) });
    expect(v.recheck(byOld, new Date(byOld.expiresAt.getTime() + 3_000))).toBeUndefined(); // within the clock tolerance (5 s)

    expect(createTokenVerifier(keys, { ...OPTS, issuer: 'edge' }).recheck(byOld)).toMatchObject({ reason: 'wrong_issuer' });
    expect(createTokenVerifier(keys, { ...OPTS, audience: 'edge' }).recheck(byOld)).toMatchObject({ reason: 'wrong_audience' });
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

  it('reads token id and key id too', async () => {
    const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2026-11', secret: SECRET } });
    expect(decodeTokenUnverified(token)).toMatchObject({ tokenId: decodeJwt(token).jti, keyId: '2026-11' });
    expect(DEFAULT_TOKEN_TTL).toBe('90d');
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
