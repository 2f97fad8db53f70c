// The fleet bench's minimal WebSocket client (bench/fleet-ws-client.ts) must put on the wire exactly what the agent's
// `ws` client does (checked against ws itself, with the agent's options), and read the relay's answers and frames
// defensively.
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import {
  acceptFor, clientFrame, FrameReader, MAX_HEAD, Opcode, PING_FRAME, readUpgradeAnswer, upgradeRequest,
} from '../../../bench/fleet-ws-client.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const PROTO = 'ctbridge.2';
const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A TCP server that records every byte a client sends; answers the upgrade with a 101 so the client sends frames. */
async function recorder(): Promise<{ port: number; bytes: () => Buffer; received: (n: number) => Promise<void> }> {
  const chunks: Buffer[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  const total = () => chunks.reduce((n, c) => n + c.length, 0);
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      chunks.push(d);
      const head = Buffer.concat(chunks).toString('latin1');
      const key = /Sec-WebSocket-Key: (.*)\r\n/.exec(head)?.[1];
      if (chunks.length === 1 && key) {
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\nSec-WebSocket-Protocol: ${PROTO}\r\n\r\n`);
      }
      if (waiter && total() >= waiter.n) waiter.resolve();
    });
    closers.push(() => s.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    received: (n) => (total() >= n ? Promise.resolve() : new Promise((resolve) => (waiter = { n, resolve }))),
  };
}

describe('what goes on the wire', () => {
  it('the upgrade request and frames are byte for byte what ws sends with the agent\'s options', async () => {
    const rec = await recorder();
    const ws = new WebSocket(`ws://127.0.0.1:${rec.port}/_ctbridge/agent`, [PROTO], {
      perMessageDeflate: false, generateMask: () => undefined, maxPayload: 16 * 1024 * 1024, handshakeTimeout: 10_000, followRedirects: false,
      headers: { authorization: 'Bearer T.O.K', 'user-agent': 'ctbridge/9.9.9' },
    });
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    const message = Buffer.alloc(300, 7); // a hello-sized message: 16-bit length
    ws.send(message, { binary: true });
    ws.ping();
    const head = rec.bytes().toString('latin1');
    const headEnd = head.indexOf('\r\n\r\n') + 4;
    const key = /Sec-WebSocket-Key: (.*)\r\n/.exec(head)![1];
    const ours = upgradeRequest({ path: '/_ctbridge/agent', host: `127.0.0.1:${rec.port}`, token: 'T.O.K', userAgent: 'ctbridge/9.9.9', subprotocol: PROTO, key });
    const frames = Buffer.concat([clientFrame(Opcode.BINARY, message), PING_FRAME]);
    await rec.received(headEnd + frames.length);
    expect(rec.bytes().subarray(0, headEnd).toString('latin1')).toBe(ours.toString('latin1'));
    expect(rec.bytes().subarray(headEnd).equals(frames)).toBe(true);
  });

  it('a ws server accepts the handshake and reads the frames (zero mask, 7-, 16- and 64-bit lengths)', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has(PROTO) ? PROTO : false) });
    await once(wss, 'listening');
    closers.push(() => wss.close());
    const seen: { auth?: string; protocol?: string; messages: Buffer[]; pings: number } = { messages: [], pings: 0 };
    wss.on('connection', (ws, req) => {
      seen.auth = req.headers.authorization;
      seen.protocol = ws.protocol;
      ws.on('message', (m) => seen.messages.push(m as Buffer));
      ws.on('ping', () => seen.pings++);
    });
    const port = (wss.address() as net.AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1');
    closers.push(() => socket.destroy());
    socket.write(upgradeRequest({ path: '/', host: `127.0.0.1:${port}`, token: 'tok', userAgent: 'x', subprotocol: PROTO, key: KEY }));
    const [answer] = (await once(socket, 'data')) as [Buffer];
    expect(readUpgradeAnswer(answer, acceptFor(KEY), PROTO)).toMatchObject({ kind: 'open' });
    const messages = [Buffer.from('hi'), Buffer.alloc(200, 1), Buffer.alloc(70_000, 2)];
    for (const m of messages) socket.write(clientFrame(Opcode.BINARY, m));
    socket.write(PING_FRAME);
    const pong = (await once(socket, 'data')) as [Buffer];
    expect([...pong[0].subarray(0, 2)]).toEqual([0x8a, 0]); // the server's pong: it read every frame before the ping
    expect(seen).toEqual({ auth: 'Bearer tok', protocol: PROTO, messages, pings: 1 });
  });
});

describe('readUpgradeAnswer', () => {
  const accept = acceptFor(KEY);
  const head = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const ok = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, `Sec-WebSocket-Protocol: ${PROTO}`];

  it('opens on a 101 with the right accept and subprotocol, keeping the bytes after the head', () => {
    const a = readUpgradeAnswer(Buffer.concat([head(ok), Buffer.from([0x82, 0])]), accept, PROTO);
    expect(a.kind).toBe('open');
    expect(a.kind === 'open' && [...a.rest]).toEqual([0x82, 0]);
  });

  it('waits for the rest of a partial head, and gives up on one longer than MAX_HEAD', () => {
    expect(readUpgradeAnswer(Buffer.from('HTTP/1.1 101 Switching'), accept, PROTO)).toEqual({ kind: 'partial' });
    expect(readUpgradeAnswer(Buffer.alloc(MAX_HEAD + 1, 'a'), accept, PROTO)).toMatchObject({ kind: 'bad' });
  });

  it('reports a refusal with its status and Retry-After', () => {
    expect(readUpgradeAnswer(head(['HTTP/1.1 503 Service Unavailable', 'Retry-After: 2', 'Content-Length: 0']), accept, PROTO))
      .toEqual({ kind: 'refused', status: 503, retryAfter: '2' });
    expect(readUpgradeAnswer(head(['HTTP/1.1 401 Unauthorized']), accept, PROTO)).toEqual({ kind: 'refused', status: 401, retryAfter: undefined });
  });

  it('refuses a wrong accept, a missing or other subprotocol, an extension, a bad status line or header', () => {
    const bad = (lines: string[]) => expect(readUpgradeAnswer(head(lines), accept, PROTO)).toMatchObject({ kind: 'bad' });
    bad(ok.map((l) => (l.startsWith('Sec-WebSocket-Accept') ? `Sec-WebSocket-Accept: ${acceptFor('other')}` : l)));
    bad(ok.filter((l) => !l.startsWith('Sec-WebSocket-Protocol')));
    bad(ok.map((l) => (l.startsWith('Sec-WebSocket-Protocol') ? 'Sec-WebSocket-Protocol: other' : l)));
    bad([...ok, 'Sec-WebSocket-Extensions: permessage-deflate']);
    bad(ok.filter((l) => !l.startsWith('Upgrade')));
    bad(['SSH-2.0-OpenSSH', ...ok.slice(1)]);
    bad([...ok, 'no colon here']);
  });
});

describe('FrameReader', () => {
  const read = (bytes: Buffer, chunk = bytes.length) => {
    const frames: [number, number[]][] = [];
    const reader = new FrameReader((op, p) => frames.push([op, [...p]]));
    let problem: string | undefined;
    for (let i = 0; i < bytes.length && !problem; i += chunk) problem = reader.push(bytes.subarray(i, i + chunk));
    return { frames, problem };
  };
  const serverFrame = (b0: number, payload: Buffer, lenForm?: 126 | 127): Buffer => {
    const form = lenForm ?? (payload.length < 126 ? 0 : payload.length < 65536 ? 126 : 127);
    const h = Buffer.alloc(form === 0 ? 2 : form === 126 ? 4 : 10);
    h[0] = b0;
    h[1] = form === 0 ? payload.length : form;
    if (form === 126) h.writeUInt16BE(payload.length, 2);
    if (form === 127) h.writeBigUInt64BE(BigInt(payload.length), 2);
    return Buffer.concat([h, payload]);
  };

  it('reads frames of every length form, whole or split byte by byte', () => {
    const big = Buffer.alloc(70_000, 3);
    const bytes = Buffer.concat([serverFrame(0x82, Buffer.from([1, 2])), serverFrame(0x89, Buffer.from('p')), serverFrame(0x82, Buffer.alloc(300, 5)), serverFrame(0x82, big), serverFrame(0x88, Buffer.from([3, 0xe8]))]);
    for (const chunk of [bytes.length, 1, 7]) {
      const { frames, problem } = read(bytes, chunk);
      expect(problem).toBeUndefined();
      expect(frames.map(([op, p]) => [op, p.length])).toEqual([[2, 2], [9, 1], [2, 300], [2, 70_000], [8, 2]]);
    }
  });

  it('refuses a masked frame, reserved bits, a fragment, an unknown opcode, an oversized frame or control frame', () => {
    expect(read(Buffer.from([0x82, 0x80, 0, 0, 0, 0])).problem).toBe('masked frame from the server');
    expect(read(Buffer.from([0xc2, 0])).problem).toBe('reserved bits set');
    expect(read(Buffer.from([0x02, 0])).problem).toBe('fragmented message');
    expect(read(Buffer.from([0x83, 0])).problem).toBe('unexpected opcode 3');
    expect(read(serverFrame(0x82, Buffer.alloc(0), 127).subarray(0, 10).fill(0xff, 2)).problem).toMatch(/^frame of/);
    expect(read(Buffer.from([0x82, 127, 0, 0, 0, 0, 0, 0x20, 0, 0])).problem).toMatch(/^frame of/);
    expect(read(serverFrame(0x89, Buffer.alloc(126), 126)).problem).toBe('control frame longer than 125 bytes');
  });
});
