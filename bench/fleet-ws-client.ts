/**
 * The smallest WebSocket client the fleet bench's simulated agents need
 * (bench/fleet-agents.ts), on a raw TCP socket: the agent's exact upgrade
 * request, the check of the relay's 101 answer, the agent's frames byte for
 * byte, and a reader of the relay's frames. The real agent's `ws` client
 * (agent/relay-dial.ts) costs its machine an HTTP client request, a parser
 * and an event emitter per link; 15,000 of them on the relay's own two cores
 * were most of a reconnect storm's CPU (docs/performance.md, "Fleet scale").
 *
 * What goes on the wire is what the agent sends (captured from `ws` 8 with
 * the agent's options): the same request line and headers in the same order
 * (no Sec-WebSocket-Extensions: the agent turns permessage-deflate off), and
 * client frames with the MASK bit set and a zero masking key (the agent's
 * `generateMask` leaves it zero; ws on the relay then skips unmasking).
 * Everything read from the relay is checked: a malformed answer or frame is
 * an error, the caller drops the link.
 */
import { createHash } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Bound on the relay's answer head and on one frame from the relay (the agent's maxPayload is 16 MiB; the relay sends far less). */
export const MAX_HEAD = 16 * 1024;
export const MAX_FRAME = 1024 * 1024;

export const Opcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

/** Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export interface UpgradeRequest {
  path: string;
  host: string;
  token: string;
  userAgent: string;
  subprotocol: string;
  /** Sec-WebSocket-Key: 16 random bytes in base64. */
  key: string;
}

/** The upgrade request, header for header in the order `ws` 8 writes it for the agent. */
export function upgradeRequest(r: UpgradeRequest): Buffer {
  return Buffer.from(
    `GET ${r.path} HTTP/1.1\r\n` +
      `authorization: Bearer ${r.token}\r\n` +
      `user-agent: ${r.userAgent}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      `Sec-WebSocket-Key: ${r.key}\r\n` +
      'Connection: Upgrade\r\n' +
      'Upgrade: websocket\r\n' +
      `Sec-WebSocket-Protocol: ${r.subprotocol}\r\n` +
      `Host: ${r.host}\r\n\r\n`,
    'latin1',
  );
}

export type UpgradeAnswer =
  /** 101 with the right accept and subprotocol; `rest`: bytes after the head (frames already sent). */
  | { kind: 'open'; rest: Buffer }
  /** Any other status (a 503 carries Retry-After). */
  | { kind: 'refused'; status: number; retryAfter: string | undefined }
  /** Not an acceptable answer: why. */
  | { kind: 'bad'; reason: string }
  /** The head is not complete yet. */
  | { kind: 'partial' };

/** Reads the relay's answer to the upgrade from what arrived so far (`head`, all bytes since the request). */
export function readUpgradeAnswer(head: Buffer, expectedAccept: string, subprotocol: string): UpgradeAnswer {
  const end = head.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return head.length > MAX_HEAD ? { kind: 'bad', reason: `answer head longer than ${MAX_HEAD} bytes` } : { kind: 'partial' };
  if (end > MAX_HEAD) return { kind: 'bad', reason: `answer head longer than ${MAX_HEAD} bytes` };
  const lines = head.toString('latin1', 0, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
  if (!status) return { kind: 'bad', reason: 'not an HTTP/1.1 status line' };
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'bad', reason: 'malformed header line' };
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const code = Number(status[1]);
  if (code !== 101) return { kind: 'refused', status: code, retryAfter: headers.get('retry-after') };
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return { kind: 'bad', reason: 'Upgrade is not websocket' };
  if (headers.get('sec-websocket-accept') !== expectedAccept) return { kind: 'bad', reason: 'wrong Sec-WebSocket-Accept' };
  if (headers.get('sec-websocket-protocol') !== subprotocol) return { kind: 'bad', reason: 'wrong or missing Sec-WebSocket-Protocol' };
  if (headers.has('sec-websocket-extensions')) return { kind: 'bad', reason: 'an extension the client did not offer' };
  return { kind: 'open', rest: head.subarray(end + 4) };
}

/** One client frame, FIN set, MASK set with a zero key (payload unchanged), as the agent's `ws` writes it. */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const frame = Buffer.alloc(2 + ext + 4 + len);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) frame.writeUInt16BE(len, 2);
  else if (ext === 8) frame.writeBigUInt64BE(BigInt(len), 2);
  // bytes 2+ext .. 6+ext: the masking key, zero.
  payload.copy(frame, 6 + ext);
  return frame;
}

/** An empty ping (what `ws.ping()` sends). */
export const PING_FRAME = clientFrame(Opcode.PING, Buffer.alloc(0));

/**
 * Reads the relay's frames from a byte stream. Server frames are never
 * masked; fragmented messages are not expected from a ctbridge relay (it
 * sends each message whole) and, like a reserved bit, an unknown opcode, a
 * masked frame or one larger than MAX_FRAME, are a protocol error.
 */
export class FrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly onFrame: (opcode: number, payload: Buffer) => void) {}

  /** Feeds bytes; returns an error text when the stream is not acceptable (then stop feeding). */
  push(chunk: Buffer): string | undefined {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let at = 0;
    while (buf.length - at >= 2) {
      const b0 = buf[at];
      const b1 = buf[at + 1];
      if ((b0 & 0x70) !== 0) return 'reserved bits set';
      if ((b0 & 0x80) === 0) return 'fragmented message';
      const opcode = b0 & 0x0f;
      if (opcode !== Opcode.BINARY && opcode !== Opcode.TEXT && opcode !== Opcode.CLOSE && opcode !== Opcode.PING && opcode !== Opcode.PONG) {
        return `unexpected opcode ${opcode}`;
      }
      if (b1 & 0x80) return 'masked frame from the server';
      let len = b1 & 0x7f;
      let headLen = 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = buf.readUInt16BE(at + 2);
        headLen = 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        const big = buf.readBigUInt64BE(at + 2);
        if (big > BigInt(MAX_FRAME)) return `frame of ${big} bytes`;
        len = Number(big);
        headLen = 10;
      }
      if (len > MAX_FRAME) return `frame of ${len} bytes`;
      if (opcode >= 8 && len > 125) return 'control frame longer than 125 bytes';
      if (buf.length - at < headLen + len) break;
      this.onFrame(opcode, buf.subarray(at + headLen, at + headLen + len));
      at += headLen + len;
    }
    if (at < buf.length) {
      buf = buf.subarray(at);
      // Keep a copy: the caller's chunk is not ours to hold.
      this.pending = Buffer.from(buf);
    }
    return undefined;
  }
}
