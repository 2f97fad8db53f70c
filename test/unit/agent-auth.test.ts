/**
 * src/agent-auth.ts: the relay's token verifier built from relay.yaml, the
 * key `ctbridge token` signs with, and the re-check of a live connection
 * after a config reload.
 */
import { describe, expect, it } from 'vitest';
import { TOKEN_CLOCK_TOLERANCE_MS } from '../../src/token.js';
import { createAgentTokenVerifier, expiryCheckDelayMs, recheckAgentToken, tokenSigningKey } from '../../src/agent-auth.js';
import { MAX_TIMER_MS, parseRelayConfig } from '../../src/config/index.js';
import { TokenError, signAgentToken } from '../../src/token.js';

const NEW = 'new-secret-0123456789abcdef-0123456789';
const OLD = 'old-secret-0123456789abcdef-0123456789';
const DAY = 86_400_000;
const relay = (auth: Record<string, unknown>, file = '/etc/ctbridge/relay.yaml') => parseRelayConfig({ auth }, file, {});

describe('tokenSigningKey', () => {
  it('signs with the first key that can sign, and names it', () => {
    expect(tokenSigningKey(relay({ keys: [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }] }).auth))
      .toEqual({ key: { id: '2027-02', secret: NEW }, label: 'key 2027-02' });
    expect(tokenSigningKey(relay({ secret: OLD }).auth)).toEqual({ key: { secret: OLD }, label: 'auth.secret' });
    expect(tokenSigningKey(parseRelayConfig({}, 'relay.yaml', { CTBRIDGE_JWT_SECRET: OLD }).auth)?.label).toBe('CTBRIDGE_JWT_SECRET');
  });
});

describe('createAgentTokenVerifier', () => {
  const old = relay({ keys: [{ id: '2026-11', secret: OLD }] });
  const rotated = relay({ keys: [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }] });

  it('accepts tokens of every configured key, and is built once per config', async () => {
    const v = createAgentTokenVerifier(rotated);
    expect(createAgentTokenVerifier(rotated)).toBe(v);
    for (const config of [old, rotated]) {
      const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: tokenSigningKey(config.auth)!.key });
      await expect(v.verify(token)).resolves.toMatchObject({ agentId: 'acme-1' });
    }
  });

  it('refuses revoked agents, naming the config file by its base name only', async () => {
    const config = relay({ secret: OLD, revoked: { agents: ['acme-1'] } });
    const token = await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { secret: OLD } });
    await expect(createAgentTokenVerifier(config).verify(token)).rejects.toMatchObject({
      code: 'CTB_TOKEN_INVALID',
      reason: 'revoked',
      message: "agent 'acme-1' is revoked in auth.revoked.agents of relay.yaml",
    });
  });
});

describe('recheckAgentToken (after a reload)', () => {
  it('keeps a connection whose token still holds, and says why one no longer does', async () => {
    const before = relay({ keys: [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }] });
    const byOld = await createAgentTokenVerifier(before).verify(
      await signAgentToken({ agentId: 'acme-1', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2026-11', secret: OLD } }),
    );
    const byNew = await createAgentTokenVerifier(before).verify(
      await signAgentToken({ agentId: 'acme-2', tunnels: ['cioc'], ttlMs: DAY, key: { id: '2027-02', secret: NEW } }),
    );
    expect(recheckAgentToken(byOld, before)).toBeUndefined();

    // The old key is removed: its tokens are no longer good; the new key's are.
    const after = relay({ keys: [{ id: '2027-02', secret: NEW }] });
    const err = recheckAgentToken(byOld, after);
    expect(err).toBeInstanceOf(TokenError);
    expect(err).toMatchObject({ reason: 'unknown_key', message: 'agent token names key "2026-11", which this relay does not have (key ids in relay.yaml: 2027-02)' });
    expect(recheckAgentToken(byNew, after)).toBeUndefined();

    // An agent is revoked.
    const revoked = relay({ keys: [{ id: '2027-02', secret: NEW }], revoked: { agents: ['acme-2'] } });
    expect(recheckAgentToken(byNew, revoked)).toMatchObject({ reason: 'revoked', message: "agent 'acme-2' is revoked in auth.revoked.agents of relay.yaml" });

    // Expired by the time of the check.
    expect(recheckAgentToken(byNew, after, new Date(byNew.expiresAt.getTime() + 60_000))).toMatchObject({ reason: 'expired' });
  });
});

describe('expiryCheckDelayMs', () => {
  it('is just past expiry with the clock tolerance, at least 1 s', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(expiryCheckDelayMs({ expiresAt: new Date(now.getTime() + 5000) }, now)).toBe(5000 + TOKEN_CLOCK_TOLERANCE_MS + 50);
    expect(expiryCheckDelayMs({ expiresAt: new Date(now.getTime() - 60_000) }, now)).toBe(1000);
  });

  // Regression: a 30- or 90-day token gave MAX_TIMER_MS plus the tolerance, which Node turns
  // into 1 ms: the relay re-checked every such connection's token in a tight loop.
  it('never exceeds what a Node timer takes, for a 90-day token', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(expiryCheckDelayMs({ expiresAt: new Date(now.getTime() + 90 * DAY) }, now)).toBe(MAX_TIMER_MS);
    expect(expiryCheckDelayMs({ expiresAt: new Date(now.getTime() + MAX_TIMER_MS - 10) }, now)).toBe(MAX_TIMER_MS);
  });
});
