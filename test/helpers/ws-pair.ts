import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { MuxSession, type SessionOptions } from '../../src/mux/session.js';

/** A relay-role and an agent-role session joined by a real WebSocket on loopback. */
export async function sessionPair(overrides: Partial<SessionOptions> = {}): Promise<{
  relay: MuxSession;
  agent: MuxSession;
  /** The agent side's raw WebSocket (to simulate a peer that goes silent). */
  agentSocket: WebSocket;
  close: () => Promise<void>;
}> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  const serverSide = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(client, 'open');
  const [server] = await serverSide;
  const base: SessionOptions = {
    role: 'relay',
    window: 256 * 1024,
    maxIncomingStreams: 100,
    heartbeat: { interval: 0, timeout: 0 },
    ...overrides,
  };
  const relay = new MuxSession(server, { ...base, role: 'relay' });
  const agent = new MuxSession(client, { ...base, role: 'agent' });
  // Streams left open when a test ends are aborted by close(); their errors are expected.
  for (const session of [relay, agent]) {
    const open = session.openStream.bind(session);
    session.openStream = (meta) => open(meta).on('error', ignore);
    session.prependListener('stream', (s) => s.on('error', ignore));
  }
  return {
    relay,
    agent,
    agentSocket: client,
    close: async () => {
      client.terminate();
      server.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function ignore(): void {}
