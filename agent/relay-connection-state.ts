/**
 * The lifecycle of one agent → relay connection as one value (the way a
 * `ws` WebSocket has `readyState`), and the only moves between values that
 * relay-connection.ts may make. A connection dials again and again until it
 * is told to stop; what happens when its link ends is part of the state.
 *
 *   idle ──▶ dialling ──▶ handshaking ──▶ ready ──▶ recycling
 *              ▲  │            │            │           │
 *              │  └────────────┴────────────┴───────────┴──▶ waiting ──┐
 *              └───────────────────────────────────────────────────────┘
 *
 * Told to stop (stopReconnecting, retire, close): ready and recycling go to
 * leaving (it serves what it has; when the link ends: stopped); idle,
 * dialling, handshaking and waiting go straight to stopped. A link stopped
 * during its handshake stays up until it closes, since the relay may have
 * sent exchanges behind its ready; a late ready moves it to leaving.
 */

export type RelayConnectionState =
  /** Made; start() not called yet. */
  | 'idle'
  /** The WebSocket upgrade is under way (directly, through a proxy, TLS). */
  | 'dialling'
  /** The WebSocket is open and hello sent; waiting for the relay's ready. */
  | 'handshaking'
  /** The relay answered ready: it opens exchanges here. A lost link is logged and dialled again. */
  | 'ready'
  /** Was ready and is on its way out for good: serves what it has, then closes; no dial follows. */
  | 'leaving'
  /** Was ready and is being replaced (it reached a node already served): drains, closes quietly, dials again after a set delay. */
  | 'recycling'
  /** No link; the next dial is scheduled (backoff, Retry-After or a recycle's delay). */
  | 'waiting'
  /** Dials no more, and serves nothing (a link told to stop during its handshake may still be closing). */
  | 'stopped';

const MOVES: Record<RelayConnectionState, readonly RelayConnectionState[]> = {
  idle: ['dialling', 'stopped'],
  dialling: ['handshaking', 'waiting', 'stopped'],
  handshaking: ['ready', 'waiting', 'stopped'],
  ready: ['leaving', 'recycling', 'waiting'],
  leaving: ['stopped'],
  recycling: ['waiting', 'leaving'],
  waiting: ['dialling', 'stopped'],
  // A late ready on a link told to stop during its handshake: it serves what the relay sends until it closes.
  stopped: ['leaving'],
};

/** Whether a connection in `from` may move to `to`. */
export function canMove(from: RelayConnectionState, to: RelayConnectionState): boolean {
  return MOVES[from].includes(to);
}

/** States in which the relay has answered ready on the link that is up: exchanges may arrive and egress may send. */
export function isServing(state: RelayConnectionState): boolean {
  return state === 'ready' || state === 'leaving' || state === 'recycling';
}

/** Where `stopReconnecting()` takes a connection: one that serves leaves, any other stops. */
export function stoppedFrom(state: RelayConnectionState): RelayConnectionState {
  return isServing(state) ? 'leaving' : 'stopped';
}

/** Where a connection goes when its link ends (closed by either side, or lost). */
export function afterLinkEnd(state: RelayConnectionState): RelayConnectionState {
  return state === 'leaving' || state === 'stopped' ? 'stopped' : 'waiting';
}
