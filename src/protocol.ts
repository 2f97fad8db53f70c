/**
 * The conversation between agent and relay on top of the multiplexer
 * (src/mux), in full in docs/wire-protocol.md: how the agent authenticates,
 * which control messages exist, and the WebSocket close codes.
 *
 *   agent                                     relay
 *   ── WebSocket upgrade to agentPath ──────▶  Authorization: Bearer <JWT>,
 *                                              Sec-WebSocket-Protocol: ctbridge.2
 *   ── CONTROL hello ──────────────────────▶  checks token + tunnels
 *   ◀────────────────────── CONTROL ready ──  (or close 4401/4403/4426 with a reason; 4204 to a
 *                                              hello with no tunnels: token good)
 *   ◀──── OPEN {kind:'http', tunnel, ...} ──  a public request for <tunnel> (an exchange)
 *   ── OPEN {kind:'egress', tunnel, ...} ──▶  provider → Client Tracker message
 *   ── CONTROL drain ──────────────────────▶  agent leaving: open no more exchanges to me
 *   ◀─────────────────── CONTROL drained ──   none will follow; in-flight ones finish
 *   ◀──────────────────── CONTROL goaway ──   relay leaving: connect elsewhere
 */

import { VERSION } from './version.js';

export const PROTOCOL_VERSION = 2;
/** The WebSocket subprotocol an agent offers; a relay that speaks another version refuses it (4426). */
export const SUBPROTOCOL = `ctbridge.${PROTOCOL_VERSION}`;

/** Sent by the relay to every request going down a tunnel, and returned to the caller. */
export const REQUEST_ID_HEADER = 'x-ctbridge-request-id';
/** Set on every response the bridge itself generated: the error code, for monitoring. */
export const ERROR_HEADER = 'x-ctbridge-error';
/** The fields the relay adds to every request head (after the caller's; lower case). */
export const RELAY_ADDED_HEADERS: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', REQUEST_ID_HEADER]);

const TUNNEL_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Tunnel names are DNS labels (1-63 lower-case letters, digits, "-"), so they can be host names under `baseDomain`. */
export function isTunnelName(name: string): boolean {
  return TUNNEL_NAME.test(name);
}

export interface HelloMessage {
  type: 'hello';
  version: number;
  /** Tunnels this agent serves (from its config). Must be a subset of the token's. */
  tunnels: string[];
  /** ctbridge version string, for logs. */
  software: string;
  hostname: string;
  /** The agent's per-exchange receive window (bytes): how much the relay may send per exchange unacknowledged. */
  window: number;
}

export interface ReadyMessage {
  type: 'ready';
  version: number;
  /** Connection id assigned by the relay (appears in both sides' logs). */
  connectionId: string;
  /** Tunnel name → public URL. */
  publicUrls: Record<string, string>;
  /** The relay's per-exchange receive window (bytes). */
  window: number;
  /** In a cluster: this relay node's id, and every node's (an agent reaching them through one URL connects to each). */
  node?: string;
  nodes?: string[];
}

/** Relay → agent, in a cluster: the nodes now (sent when they change). */
export interface ClusterMessage {
  type: 'cluster';
  node: string;
  nodes: string[];
}

/** Agent → relay: I am leaving; open no more exchanges to me. */
export interface DrainMessage {
  type: 'drain';
  reason: string;
}

/** Relay → agent, answering drain: no exchange follows this message; the ones already open finish. */
export interface DrainedMessage {
  type: 'drained';
}

/** Relay → agent: the relay is leaving; connect again (elsewhere); in-flight exchanges finish. */
export interface GoawayMessage {
  type: 'goaway';
  reason: string;
}

/*
 * Between relay nodes (docs/wire-protocol.md, "Between relay nodes"). Every
 * string and list in them is checked by the receiving node
 * (relay/cluster/peer-announce.ts); proofs are relay/cluster/node-auth.ts's.
 */

/** Dialing node → listening node, first: who I am, and a fresh nonce the listener must prove over. */
export interface NodeHelloMessage {
  type: 'node-hello';
  nodeId: string;
  nonce: string;
}

/** Listener → dialer: who I am, my fresh nonce, and my proof (one per secret I hold) over both nonces and both ids. */
export interface NodeChallengeMessage {
  type: 'node-challenge';
  nodeId: string;
  nonce: string;
  proofs: string[];
}

/** Dialer → listener, only once the listener's proof checked: the dialer's proof. */
export interface NodeProofMessage {
  type: 'node-proof';
  proofs: string[];
}

/** Listener → dialer, once the dialer's proof checked: the tunnels this node's agents serve, and whether it is leaving. */
export interface NodeMessage {
  type: 'node';
  nodeId: string;
  tunnels: string[];
  draining: boolean;
}

/** Listener → dialer: the tunnels changed. */
export interface NodeTunnelsMessage {
  type: 'tunnels';
  tunnels: string[];
}

/** Listener → dialer: this node got SIGTERM; send it nothing new. */
export interface NodeDrainingMessage {
  type: 'draining';
}

export type NodeControlMessage = NodeHelloMessage | NodeChallengeMessage | NodeProofMessage | NodeMessage | NodeTunnelsMessage | NodeDrainingMessage;

export type ControlMessage = HelloMessage | ReadyMessage | ClusterMessage | DrainMessage | DrainedMessage | GoawayMessage | NodeControlMessage;

/** WebSocket close codes (4000-4999 are application codes). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INTERNAL_ERROR: 1011,
  BAD_HELLO: 4400,
  TOKEN_INVALID: 4401,
  TUNNEL_NOT_ALLOWED: 4403,
  /**
   * The hello offered no tunnels: the token was accepted, nothing was
   * registered (what `ctbridge agent verify --connect` asks for, to check the
   * token without taking traffic from a running agent).
   */
  NO_TUNNELS_OFFERED: 4204,
  HANDSHAKE_TIMEOUT: 4408,
  VERSION_MISMATCH: 4426,
} as const;

/** Close codes after which retrying with the same token and config cannot succeed. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.TOKEN_INVALID, CloseCode.TUNNEL_NOT_ALLOWED, CloseCode.NO_TUNNELS_OFFERED, CloseCode.VERSION_MISMATCH]);

export const SOFTWARE_VERSION = `ctbridge/${VERSION}`;
