/**
 * The tunnel protocol's start on an upgraded WebSocket (startSession) and
 * the control messages of the handshake and after, as the agent writes and
 * reads them (the relay's side: relay/agent-endpoint.ts; the format:
 * docs/wire-protocol.md). The agent says hello; the relay
 * answers ready (or closes with a code), later maybe drained, goaway or
 * cluster. Everything read is untrusted: fields are checked and capped
 * here, before any of them reaches a log line or the status page.
 */
import { hostname } from 'node:os';
import type { WebSocket } from 'ws';
import type { AgentConfig } from '../src/config/index.js';
import { untrusted } from '../src/log-text.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import { MuxSession } from '../src/mux/session.js';
import { CloseCode, PROTOCOL_VERSION, SOFTWARE_VERSION, type HelloMessage } from '../src/protocol.js';

export interface ReadyInfo {
  connectionId: string;
  publicUrls: Record<string, string>;
  /** In a cluster: the relay node this connection reached, and every node's id. */
  node?: string;
  nodes?: string[];
}

/** What the agent says first on a new connection: its protocol version, tunnels and receive window. */
export function helloMessage(config: AgentConfig): HelloMessage {
  return {
    type: 'hello',
    version: PROTOCOL_VERSION,
    tunnels: Object.keys(config.tunnels),
    software: SOFTWARE_VERSION,
    hostname: hostname(),
    window: config.streamWindow,
  };
}

/** The relay's ready, checked field by field (a relay of another version is warned about, not refused). */
export function readReady(message: Record<string, unknown>, log: Logger): ReadyInfo {
  const info: ReadyInfo = {
    connectionId: typeof message.connectionId === 'string' ? message.connectionId : '',
    publicUrls: isStringRecord(message.publicUrls) ? message.publicUrls : {},
  };
  if (typeof message.node === 'string') info.node = message.node.slice(0, 63);
  const nodes = nodeList(message.nodes);
  if (nodes) info.nodes = nodes;
  if (message.version !== PROTOCOL_VERSION) {
    log.warn({ relayVersion: message.version, agentVersion: PROTOCOL_VERSION }, 'relay speaks another protocol version');
  }
  return info;
}

/** What the connection does with each control message after the handshake. */
export interface ControlHandlers {
  ready(message: Record<string, unknown>): void;
  drained(): void;
  goaway(): void;
  cluster(nodes: string[]): void;
}

export interface SessionHandlers extends ControlHandlers {
  exchange(exchange: Exchange): void;
  close(code: number, reason: string): void;
}

/**
 * Starts the tunnel protocol on a WebSocket the relay upgraded: the
 * session, hello, and a bound on the wait for ready (`timeouts.connect`;
 * then the link closes with 4xxx HANDSHAKE_TIMEOUT). Clear `readyTimer` once
 * ready came or the link ended. `node()`: the relay node, for log lines.
 */
export function startSession(ws: WebSocket, config: AgentConfig, log: Logger, node: () => string | undefined, on: SessionHandlers): { session: MuxSession; readyTimer: NodeJS.Timeout } {
  const session = new MuxSession(ws, {
    role: 'agent',
    window: config.streamWindow,
    maxIncoming: config.limits.maxStreams,
    heartbeat: config.heartbeat,
  });
  session.on('exchange', (exchange) => on.exchange(exchange));
  session.on('problem', (problem) => log.warn({ problem: untrusted(problem, 300) }, 'relay broke the tunnel protocol'));
  session.on('control', (message) => onControlMessage(message, log, node(), on));
  session.on('close', (code, reason) => on.close(code, reason));
  session.sendControl(helloMessage(config));
  const readyTimer = setTimeout(() => {
    log.warn({ hint: 'check that relay: in agent.yaml points at a ctbridge relay of the same version' }, 'relay did not answer the hello');
    session.close(CloseCode.HANDSHAKE_TIMEOUT, 'no ready from the relay');
  }, config.timeouts.connect);
  return { session, readyTimer };
}

/** Dispatches one control message from the relay; `node` names the relay node in the goaway line. */
export function onControlMessage(message: Record<string, unknown>, log: Logger, node: string | undefined, on: ControlHandlers): void {
  switch (message.type) {
    case 'ready':
      on.ready(message);
      break;
    case 'drained':
      on.drained();
      break;
    case 'goaway':
      log.info({ reason: untrusted(message.reason), node }, 'relay is going away');
      on.goaway();
      break;
    case 'cluster': {
      const nodes = nodeList(message.nodes);
      if (nodes) on.cluster(nodes);
      break;
    }
    default:
      log.debug({ type: message.type }, 'ignored unknown control message');
  }
}

/** At most 256 node ids of at most 63 characters: what a cluster message may carry. */
function nodeList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string').slice(0, 256).map((n) => n.slice(0, 63)) : undefined;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
