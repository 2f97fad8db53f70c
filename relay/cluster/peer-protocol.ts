/**
 * Between relay nodes (docs/wire-protocol.md, "Between relay nodes"): the
 * same frames and exchanges as between relay and agent, on each node's
 * cluster listener, authenticated with the cluster secret. A node dials
 * every other; the dialer sends exchanges, the listener announces:
 *
 *   dialer ── CONTROL node {nodeId} ─────────────────────────▶ listener
 *          ◀─ CONTROL node {nodeId, tunnels, draining} ──────
 *          ◀─ CONTROL tunnels {tunnels} (whenever they change)
 *          ◀─ CONTROL draining (SIGTERM)
 *          ── OPEN {head} ... (a public request for a tunnel the listener serves) ──▶
 */
export const PEER_PATH = '/_ctbridge/peer';
export const PEER_SUBPROTOCOL = 'ctbridge-peer.2';
