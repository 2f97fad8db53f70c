import { describe, expect, it } from 'vitest';
import { isNonce, linkProof, linkProofs, newNonce, verifyLinkProofs, type LinkTranscript } from '../../../../relay/cluster/node-auth.js';

const SECRET = 'cluster-secret-0123456789abcdef-0123456789';
const OTHER = 'another-secret-0123456789abcdef-0123456789';

function transcript(over: Partial<LinkTranscript> = {}): LinkTranscript {
  return { dialerNonce: newNonce(), listenerNonce: newNonce(), dialerId: 'node-a', listenerId: 'node-b', ...over };
}

describe('node link proofs', () => {
  it('a proof by the holder of the secret checks, for the side that made it', () => {
    const t = transcript();
    expect(verifyLinkProofs([linkProof(SECRET, 'dialer', t)], [SECRET], 'dialer', t)).toBe(true);
    expect(verifyLinkProofs([linkProof(SECRET, 'listener', t)], [SECRET], 'listener', t)).toBe(true);
  });

  it("one side's proof is not the other side's (no reflection)", () => {
    const t = transcript();
    expect(verifyLinkProofs([linkProof(SECRET, 'listener', t)], [SECRET], 'dialer', t)).toBe(false);
  });

  it('a proof from another connection (other nonces) does not check: a replay fails', () => {
    const captured = transcript();
    const proof = linkProof(SECRET, 'dialer', captured);
    expect(verifyLinkProofs([proof], [SECRET], 'dialer', { ...captured, listenerNonce: newNonce() })).toBe(false);
    expect(verifyLinkProofs([proof], [SECRET], 'dialer', { ...captured, dialerNonce: newNonce() })).toBe(false);
  });

  it('a proof for other node ids does not check', () => {
    const t = transcript();
    const proof = linkProof(SECRET, 'dialer', t);
    expect(verifyLinkProofs([proof], [SECRET], 'dialer', { ...t, dialerId: 'node-c' })).toBe(false);
    expect(verifyLinkProofs([proof], [SECRET], 'dialer', { ...t, listenerId: 'node-c' })).toBe(false);
    // Length prefixes: moving a character between fields changes the proof.
    expect(linkProof(SECRET, 'dialer', { ...t, dialerId: 'node-ab', listenerId: 'b' })).not.toBe(linkProof(SECRET, 'dialer', { ...t, dialerId: 'node-a', listenerId: 'bb' }));
  });

  it('with TLS, a proof is bound to the TLS session: relayed between two TLS connections it does not check', () => {
    const t = transcript({ tlsBinding: 'session-1' });
    const proof = linkProof(SECRET, 'listener', t);
    expect(verifyLinkProofs([proof], [SECRET], 'listener', t)).toBe(true);
    expect(verifyLinkProofs([proof], [SECRET], 'listener', { ...t, tlsBinding: 'session-2' })).toBe(false);
    expect(verifyLinkProofs([proof], [SECRET], 'listener', { ...t, tlsBinding: undefined })).toBe(false);
  });

  it('a proof under another secret does not check', () => {
    const t = transcript();
    expect(verifyLinkProofs([linkProof(OTHER, 'dialer', t)], [SECRET], 'dialer', t)).toBe(false);
  });

  it('during a rotation: proofs under both secrets, and either is accepted', () => {
    const t = transcript();
    const both = linkProofs([SECRET, OTHER], 'dialer', t);
    expect(both).toHaveLength(2);
    expect(verifyLinkProofs(both, [OTHER], 'dialer', t)).toBe(true);
    expect(verifyLinkProofs(both, [SECRET], 'dialer', t)).toBe(true);
    expect(verifyLinkProofs([linkProof(OTHER, 'dialer', t)], [SECRET, OTHER], 'dialer', t)).toBe(true);
  });

  it.each([
    ['not a list', 'abc'],
    ['an empty list', []],
    ['more proofs than a node holds secrets', ['a', 'b', 'c']],
    ['a non-string', [42]],
    ['a short string', ['AAAA']],
    ['not base64url', ['!'.repeat(43)]],
  ])('malformed proofs (%s) do not check and do not throw', (_what, proofs) => {
    expect(verifyLinkProofs(proofs, [SECRET], 'dialer', transcript())).toBe(false);
  });

  it('a valid proof hidden among malformed ones does not check', () => {
    const t = transcript();
    expect(verifyLinkProofs([linkProof(SECRET, 'dialer', t), 7], [SECRET], 'dialer', t)).toBe(false);
  });

  it('nonces are 32 fresh bytes', () => {
    const a = newNonce();
    expect(isNonce(a)).toBe(true);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newNonce()).not.toBe(a);
    expect(isNonce('short')).toBe(false);
    expect(isNonce(a + 'A')).toBe(false);
    expect(isNonce(123)).toBe(false);
  });
});
