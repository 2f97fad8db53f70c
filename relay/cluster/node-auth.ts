/**
 * How two relay nodes prove to each other, on one connection, that both hold
 * the cluster secret (docs/wire-protocol.md, "Between relay nodes"): a
 * challenge-response, never a bearer token.
 *
 *   dialer ── node-hello {nodeId, nonce: nD} ─────────────────▶ listener
 *          ◀─ node-challenge {nodeId, nonce: nL, proofs: [P_listener]}
 *          ── node-proof {proofs: [P_dialer]} ────────────────▶
 *
 *   P_side = HMAC-SHA256(secret, LABEL, side, nD, nL, dialer id, listener id, TLS binding)
 *
 * Each nonce is 32 fresh random bytes from the side that checks the proof,
 * so a proof captured on one connection proves nothing on another. The
 * side ("dialer" / "listener") is part of the proof, so neither side's
 * answer can be reflected as the other's. During a secret rotation a node
 * holds two secrets: it sends a proof under each and accepts a proof under
 * either (`cluster.previousSecret`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const LABEL = 'ctbridge-cluster-link-v1';
const NONCE_BYTES = 32;
/** 32 bytes in base64url, unpadded: 43 characters. */
const B64_32 = /^[A-Za-z0-9_-]{43}$/;
/** A node holds at most two secrets (current and previous); a few more proofs than that are malformed. */
export const MAX_PROOFS = 2;

export type LinkSide = 'dialer' | 'listener';

/** What a proof is bound to: both nonces and both node ids of this connection. */
export interface LinkTranscript {
  dialerNonce: string;
  listenerNonce: string;
  dialerId: string;
  listenerId: string;
  /**
   * With `cluster.tls`: keying material exported from this TLS session
   * (RFC 5705), the same on both ends of one TLS connection only, so a
   * handshake relayed between two TLS connections does not check.
   */
  tlsBinding?: string;
}

/** The TLS exporter value of a node link's socket; undefined on plain TCP. */
export function tlsBinding(socket: unknown): string | undefined {
  const s = socket as { encrypted?: boolean; exportKeyingMaterial?: (length: number, label: string) => Buffer };
  if (!s?.encrypted || typeof s.exportKeyingMaterial !== 'function') return undefined;
  return s.exportKeyingMaterial(32, 'EXPORTER-ctbridge-cluster-link').toString('base64url');
}

export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}

export function isNonce(v: unknown): v is string {
  return typeof v === 'string' && B64_32.test(v);
}

/** Each field length-prefixed, so no two different transcripts give the same bytes. */
function encode(side: LinkSide, t: LinkTranscript): Buffer {
  const parts = [LABEL, side, t.dialerNonce, t.listenerNonce, t.dialerId, t.listenerId, t.tlsBinding ?? ''].map((p) => Buffer.from(p, 'utf8'));
  const out: Buffer[] = [];
  for (const p of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length);
    out.push(len, p);
  }
  return Buffer.concat(out);
}

/** The proof `side` sends under `secret`. */
export function linkProof(secret: string, side: LinkSide, t: LinkTranscript): string {
  return createHmac('sha256', secret).update(encode(side, t)).digest('base64url');
}

/** One proof per secret this node holds (current first). */
export function linkProofs(secrets: readonly string[], side: LinkSide, t: LinkTranscript): string[] {
  return secrets.map((s) => linkProof(s, side, t));
}

/**
 * Whether `proofs` (from the other side, unchecked input) holds a valid
 * proof by `side` under any of `secrets`. Compared in constant time.
 */
export function verifyLinkProofs(proofs: unknown, secrets: readonly string[], side: LinkSide, t: LinkTranscript): boolean {
  if (!Array.isArray(proofs) || proofs.length === 0 || proofs.length > MAX_PROOFS) return false;
  let ok = false;
  for (const secret of secrets) {
    const expected = Buffer.from(linkProof(secret, side, t), 'base64url');
    for (const p of proofs) {
      if (typeof p !== 'string' || !B64_32.test(p)) return false;
      // No early exit: every pair is compared, so timing says nothing about which matched.
      if (timingSafeEqual(expected, Buffer.from(p, 'base64url'))) ok = true;
    }
  }
  return ok;
}
