/**
 * How long the agent waits on its relay connections when it leaves one:
 * defined here once, for relay-connection.ts and relay-connections.ts.
 */

/** How long a drain waits for the relay's confirmation (`drained`). */
export const DRAIN_CONFIRM_MS = 5000;
/** How long close() waits for the relay to answer the WebSocket close before dropping the connection. */
export const CLOSE_HANDSHAKE_MS = 1000;
