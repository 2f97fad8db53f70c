/**
 * Between relay nodes (docs/wire-protocol.md, "Between relay nodes"): the
 * same frames and exchanges as between relay and agent, on each node's
 * cluster listener. A node dials every other; both prove the cluster secret
 * on the connection (node-auth.ts) before anything else; then the dialer
 * sends exchanges and the listener announces:
 *
 *   dialer ── CONTROL node-hello {nodeId, nonce} ────────────▶ listener
 *          ◀─ CONTROL node-challenge {nodeId, nonce, proofs} ─
 *          ── CONTROL node-proof {proofs} ───────────────────▶
 *          ◀─ CONTROL node {nodeId, tunnels, draining} ──────
 *          ◀─ CONTROL tunnels {tunnels} (whenever they change)
 *          ◀─ CONTROL draining (SIGTERM)
 *          ── OPEN {head} ... (a public request for a tunnel the listener serves) ──▶
 *
 * Version 3: the challenge-response replaced version 2's bearer token.
 */
export const PEER_PATH = '/_ctbridge/peer';
export const PEER_SUBPROTOCOL = 'ctbridge-peer.3';
