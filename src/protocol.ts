/**
 * The conversation between agent and relay on top of the multiplexer
 * (src/mux): how the agent authenticates, which control messages exist, the
 * OPEN metadata of a stream, and the WebSocket close codes with their meaning.
 *
 *   agent                                   relay
 *   ── WebSocket upgrade to agentPath ──▶   Authorization: Bearer <JWT>
 *   ── CONTROL hello ────────────────────▶  checks token + tunnels
 *   ◀──────────────────── CONTROL ready ──  (or close 4401/4403 with reason)
 *   ◀───────── OPEN {tunnel, kind:'http'} ─ a public request for <tunnel>
 *   ── OPEN {tunnel, kind:'egress'} ────▶   provider → CT message (issue 3)
 *   ── CONTROL goaway ───────────────────▶  agent leaving: no new streams
 */

import { VERSION } from './version.js';

export const PROTOCOL_VERSION = 1;

/** Sent by the relay to every request going down a tunnel, and returned to the caller. */
export const REQUEST_ID_HEADER = 'x-ctbridge-request-id';
/** Set on every response the bridge itself generated: the error code, for monitoring. */
export const ERROR_HEADER = 'x-ctbridge-error';

export interface HelloMessage {
  type: 'hello';
  version: number;
  /** Tunnels this agent serves (from its config). Must be a subset of the token's. */
  tunnels: string[];
  /** ctbridge version string, for logs. */
  software: string;
  hostname: string;
  /** The agent's per-stream receive window (bytes): how much the relay may send per stream unacknowledged. */
  window: number;
}

export interface ReadyMessage {
  type: 'ready';
  version: number;
  /** Connection id assigned by the relay (appears in both sides' logs). */
  connectionId: string;
  /** Tunnel name → public URL. */
  publicUrls: Record<string, string>;
  /** The relay's per-stream receive window (bytes). */
  window: number;
}

/** Either side: stop sending new streams to me; in-flight streams finish. */
export interface GoawayMessage {
  type: 'goaway';
  reason: string;
}

export type ControlMessage = HelloMessage | ReadyMessage | GoawayMessage;

/** Metadata of an OPEN frame. */
export interface StreamMeta {
  /** 'http': relay → agent, carries HTTP/1.1 to the tunnel's target. 'egress': agent → relay, provider → CT. */
  kind: 'http' | 'egress';
  tunnel: string;
}

/** WebSocket close codes (4000-4999 are application codes). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  BAD_HELLO: 4400,
  TOKEN_INVALID: 4401,
  TUNNEL_NOT_ALLOWED: 4403,
  HANDSHAKE_TIMEOUT: 4408,
  VERSION_MISMATCH: 4426,
} as const;

/** Close codes after which retrying with the same token and config cannot succeed. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.TOKEN_INVALID, CloseCode.TUNNEL_NOT_ALLOWED, CloseCode.VERSION_MISMATCH]);

export const SOFTWARE_VERSION = `ctbridge/${VERSION}`;
