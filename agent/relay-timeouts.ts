/**
 * How long the agent waits on its relay connections when it leaves one:
 * defined here once, for relay-connection.ts, relay-connections.ts and
 * relay-error-body.ts.
 */

/** How long a drain waits for the relay's confirmation (`drained`). */
export const DRAIN_CONFIRM_MS = 5000;
/** How long close() waits for the relay to answer the WebSocket close before dropping the connection. */
export const CLOSE_HANDSHAKE_MS = 1000;
/** How long the agent reads a refusal's JSON error body for its reason. */
export const ERROR_BODY_MS = 1000;
