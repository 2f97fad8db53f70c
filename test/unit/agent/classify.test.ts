import { describe, expect, it } from 'vitest';
import { checkPath } from '../../../agent/allow-paths.js';
import { describeClose, describeConnectError, type RelayContext } from '../../../agent/relay-errors.js';
import { publicCloseReason, verifiedTokenCloseReason } from '../../../relay/handshake-refusal.js';

describe('checkPath', () => {
  const allow = ['/ct/ctregister.asp', '/api/'];
  it.each([
    ['/ct/ctregister.asp', 'allowed'],
    ['/ct/ctregister.asp?login=a&token=b', 'allowed'],
    ['/api/', 'allowed'],
    ['/api/v1/x%20y', 'allowed'],
    ['/%61pi/x', 'allowed'],
    ['/api', 'denied'],
    ['/CT/CTREGISTER.ASP', 'denied'],
    ['/ct/ctregister.asp/', 'denied'],
    ['/api/../admin', 'denied'],
    ['/api/%2E%2E/admin', 'denied'],
    ['/api/..%5Cadmin', 'denied'],
    ['/api/./x', 'denied'],
    ['/api/%00', 'denied'],
    ['/api/%E0%A4%A', 'bad-encoding'],
  ])('%s → %s', (path, verdict) => {
    expect(checkPath(path, allow)).toBe(verdict);
  });

  it('allows everything without allowPaths', () => {
    expect(checkPath('/anything/../at%all', undefined)).toBe('allowed');
  });
});

describe('relay problems', () => {
  const ctx: RelayContext = {
    relayUrl: 'wss://relay.example.com/_ctbridge/agent', connectTimeout: 10_000, agentId: 'acme', tunnels: ['ucws'],
    dial: { relay: 'relay.example.com:443', proxy: undefined, ca: undefined, agent: undefined },
  };
  it('hints at ca: for certificate failures', () => {
    const p = describeConnectError(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), ctx);
    expect(p.msg).toBe('cannot verify the relay certificate');
    expect(p.fields.hint).toBe("set `ca:` in agent.yaml to your proxy's/relay's CA bundle, or have it installed in the operating system's store and add system to trust: in agent.yaml");
  });
  // Regression (review): the hint read trust.sources (what could be loaded), not trust: in agent.yaml, so an agent
  // configured with trust: [system] on a Node that cannot read the store was told to add system to trust:.
  it('the certificate hint follows trust: as configured', () => {
    const err = Object.assign(new Error('unable to get local issuer certificate'), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' });
    const hint = (dial: Partial<RelayContext['dial']>) => String(describeConnectError(err, { ...ctx, dial: { ...ctx.dial, ...dial } }).fields.hint);
    expect(hint({ trustsSystem: true })).toBe("set `ca:` in agent.yaml to your proxy's/relay's CA bundle, or have it installed in the operating system's store");
    const unreadable = 'Node v20.20.2 cannot read the Windows certificate store (it needs Node 22.15 or later; the single executable has it)';
    expect(hint({ trustsSystem: true, systemUnreadable: unreadable })).toBe(`set \`ca:\` in agent.yaml to your proxy's/relay's CA bundle: trust: names system, but ${unreadable}`);
    expect(hint({ trustsSystem: false })).toMatch(/ and add system to trust: in agent\.yaml$/);
  });
  it('names the relay for DNS failures', () => {
    const p = describeConnectError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), ctx);
    expect(p).toMatchObject({ msg: 'cannot reach relay', fields: { code: 'CTB_RELAY_UNREACHABLE', relay: 'relay.example.com:443' } });
  });
  it('tells an agent refused for its token what to do: the request id for the relay operator and a new token, or (revoked) ask the operator', () => {
    // At connect the relay says only the public sentence and a request id (relay/handshake-refusal.ts).
    const atConnect = describeClose(4401, publicCloseReason({ code: 'CTB_TOKEN_INVALID', params: {} }, '0a1b2c3d00000007'), ctx);
    expect(atConnect).toMatchObject({ level: 'error', msg: 'relay refused the agent token', fields: { code: 'CTB_TOKEN_INVALID', closeCode: 4401, requestId: '0a1b2c3d00000007' } });
    expect(atConnect.fields.hint).toMatch(/^give the relay operator request id 0a1b2c3d00000007: .*; then issue a new token .*ctbridge token .* --ttl 90d/);
    // A live connection cut off after a reload: the relay says what the agent's operator can do.
    const revoked = describeClose(4401, verifiedTokenCloseReason({ code: 'CTB_TOKEN_INVALID', params: {}, reason: 'revoked' }, '0a1b2c3d00000008'), ctx);
    expect(revoked.fields).toMatchObject({ reason: "The relay operator revoked this agent's token; ask them for a new one (request id 0a1b2c3d00000008)", requestId: '0a1b2c3d00000008' });
    expect(revoked.fields.hint).toMatch(/^the relay operator has revoked this agent or token/);
    const expired = describeClose(4401, verifiedTokenCloseReason({ code: 'CTB_TOKEN_INVALID', params: {}, reason: 'expired' }, '0a1b2c3d00000009'), ctx);
    expect(expired.fields.hint).toMatch(/ctbridge token .* --ttl 90d/);
    // An agent can tell by itself that its own token has expired.
    const own = describeClose(4401, publicCloseReason({ code: 'CTB_TOKEN_INVALID', params: {} }, '0a1b2c3d0000000a'), { ...ctx, tokenExpiresAt: new Date('2026-01-02T03:04:05.678Z') });
    expect(own.fields.hint).toMatch(/^this agent's token expired at 2026-01-02T03:04:05Z; issue a new token/);
    expect(describeClose(4401, 'bad\u001b[2Jreason', ctx).fields.reason).toBe('bad\ufffd[2Jreason');
  });
  it('treats other close codes as a warning', () => {
    expect(describeClose(1006, '', ctx)).toMatchObject({ level: 'warn', msg: 'disconnected from relay', fields: { closeCode: 1006, reason: 'connection lost' } });
  });
});
