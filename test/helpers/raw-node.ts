/**
 * Raw relay-node peers for hostile tests of node links: a fake listener
 * (an impostor at a peer address, or a node that knows the secret and
 * announces bad things) and a fake dialer, each recording every control
 * message and exchange the real node sent it.
 */
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { decodeFrames, encodeJson, FrameType, parseJsonPayload } from '../../src/mux/frame.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from '../../relay/cluster/peer-protocol.js';

export type Control = Record<string, unknown> & { type: string };

export interface RawNodeConnection {
  ws: WebSocket;
  headers: IncomingHttpHeaders;
  controls: Control[];
  /** Frames other than CONTROL (OPEN: an exchange the real node sent). */
  otherFrames: number[];
  send(message: Control): void;
  /** Resolves with the next control message of `type` (or any). */
  next(type?: string): Promise<Control>;
  closed: Promise<[number, string]>;
}

function wrap(ws: WebSocket, headers: IncomingHttpHeaders): RawNodeConnection {
  ws.binaryType = 'nodebuffer';
  const controls: Control[] = [];
  const otherFrames: number[] = [];
  const waiters: { type?: string; resolve: (c: Control) => void }[] = [];
  ws.on('message', (data: Buffer) => {
    decodeFrames(Buffer.from(data), (f) => {
      if (f.type !== FrameType.CONTROL) {
        otherFrames.push(f.type);
        return;
      }
      const c = parseJsonPayload(f) as Control;
      controls.push(c);
      const i = waiters.findIndex((w) => !w.type || w.type === c.type);
      if (i !== -1) waiters.splice(i, 1)[0].resolve(c);
    });
  });
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString('utf8')])));
  return {
    ws, headers, controls, otherFrames, closed,
    send: (message) => ws.send(Buffer.concat(encodeJson(FrameType.CONTROL, 0, 0, message))),
    next: (type) => {
      const seen = controls.find((c) => !type || c.type === type);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
  };
}

/** A WebSocket server speaking the node subprotocol at 127.0.0.1:`port`; `onConnection` plays the listener. */
export async function rawNodeListener(port: number, onConnection: (c: RawNodeConnection) => void): Promise<{
  connections: RawNodeConnection[];
  close: () => Promise<void>;
}> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols: () => PEER_SUBPROTOCOL });
  await once(wss, 'listening');
  const connections: RawNodeConnection[] = [];
  wss.on('connection', (ws, req) => {
    const c = wrap(ws, req.headers);
    connections.push(c);
    onConnection(c);
  });
  return {
    connections,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Dials a node's cluster listener at 127.0.0.1:`port` from `localAddress`; resolves once open (rejects with the HTTP refusal). */
export async function rawNodeDialer(port: number, localAddress = '127.0.0.1'): Promise<RawNodeConnection> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${PEER_PATH}`, [PEER_SUBPROTOCOL], { localAddress });
  const c = wrap(ws, {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
  return c;
}

