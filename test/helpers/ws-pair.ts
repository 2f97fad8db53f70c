import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { MuxSession, type SessionOptions } from '../../src/mux/session.js';

/** Two WebSockets joined on loopback: `server` (the relay's end) and `client` (the agent's end). */
export async function wsPair(): Promise<{ server: WebSocket; client: WebSocket; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  const serverSide = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(client, 'open');
  const [server] = await serverSide;
  return {
    server,
    client,
    close: async () => {
      client.terminate();
      server.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

export const TEST_SESSION_OPTIONS: SessionOptions = {
  role: 'relay',
  window: 256 * 1024,
  maxIncoming: 100,
  heartbeat: { interval: 0, timeout: 0 },
};

/**
 * A relay-role and an agent-role session joined by a real WebSocket on
 * loopback. `overrides` apply to both sides; `sides` to one.
 */
export async function sessionPair(
  overrides: Partial<SessionOptions> = {},
  sides: { relay?: Partial<SessionOptions>; agent?: Partial<SessionOptions> } = {},
): Promise<{
  relay: MuxSession;
  agent: MuxSession;
  /** The relay side's raw WebSocket. */
  relaySocket: WebSocket;
  /** The agent side's raw WebSocket (to simulate a peer that goes silent). */
  agentSocket: WebSocket;
  close: () => Promise<void>;
}> {
  const { server, client, close } = await wsPair();
  const base: SessionOptions = { ...TEST_SESSION_OPTIONS, ...overrides };
  const relay = new MuxSession(server, { ...base, ...sides.relay, role: 'relay' });
  const agent = new MuxSession(client, { ...base, ...sides.agent, role: 'agent' });
  return { relay, agent, relaySocket: server, agentSocket: client, close };
}

/**
 * A session of `role` whose peer is a bare WebSocket the test drives frame
 * by frame (a hostile or buggy peer), with every frame the session sends
 * recorded.
 */
export async function rawPeer(role: 'relay' | 'agent', overrides: Partial<SessionOptions> = {}): Promise<{
  session: MuxSession;
  /** The peer's WebSocket: send raw frames on it. */
  peer: WebSocket;
  /** Resolves with the close code and reason the peer saw. */
  peerClosed: Promise<[number, string]>;
  close: () => Promise<void>;
}> {
  const { server, client, close } = await wsPair();
  const [mine, theirs] = role === 'relay' ? [server, client] : [client, server];
  const session = new MuxSession(mine, { ...TEST_SESSION_OPTIONS, ...overrides, role });
  theirs.binaryType = 'nodebuffer';
  const peerClosed = new Promise<[number, string]>((resolve) => theirs.once('close', (code, reason) => resolve([code, reason.toString('utf8')])));
  return { session, peer: theirs, peerClosed, close };
}
