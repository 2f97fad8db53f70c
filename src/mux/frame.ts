/**
 * Wire format of the multiplexer (docs/wire-protocol.md). One binary
 * WebSocket message carries one or more frames back to back; the session
 * batches the frames of one event-loop turn into a single message:
 *
 *   [type u8][flags u8][exchange id u32 BE][length u32 BE][payload: length bytes]
 *
 * Exchange 0 carries CONTROL frames only. Payloads: OPEN (request head),
 * REPLY (response head), RESET (error) and CONTROL are UTF-8 JSON; DATA is
 * raw body bytes; WINDOW is a u32 credit increment in bytes. The END flag
 * closes the sender's direction of an exchange; it may ride on OPEN (a
 * request without a body), REPLY (a response without a body) or DATA.
 *
 * Everything here is checked before use: a frame that cannot be decoded is a
 * protocol error that closes the connection (FrameError).
 */
import { CtbridgeError } from '../errors.js';

export const HEADER_SIZE = 10;
/** Largest DATA payload the session puts in one frame. */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Largest JSON payload (OPEN, REPLY, RESET, CONTROL) accepted: heads are bounded by the HTTP header limits. */
export const MAX_JSON_PAYLOAD = 1024 * 1024;

export const FrameType = {
  OPEN: 1,
  REPLY: 2,
  DATA: 3,
  RESET: 4,
  WINDOW: 5,
  CONTROL: 6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FLAG_END = 1;

const TYPE_NAMES: Record<number, string> = { 1: 'OPEN', 2: 'REPLY', 3: 'DATA', 4: 'RESET', 5: 'WINDOW', 6: 'CONTROL' };
/** Which types may carry the END flag. */
const END_ALLOWED = new Set<number>([FrameType.OPEN, FrameType.REPLY, FrameType.DATA]);

export interface Frame {
  type: FrameType;
  flags: number;
  id: number;
  payload: Buffer;
  /** The payload is a view into a message that carries other frames too. */
  shared: boolean;
}

/** A frame that cannot be decoded: the connection is closed with this reason. */
export class FrameError extends CtbridgeError {
  constructor(message: string) {
    super('CTB_PROTOCOL', message);
    this.name = 'FrameError';
  }
}

const EMPTY = Buffer.alloc(0);

export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`;
}

export function encodeHeader(type: FrameType, flags: number, id: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = type;
  header[1] = flags;
  header.writeUInt32BE(id, 2);
  header.writeUInt32BE(length, 6);
  return header;
}

export function encodeJson(type: FrameType, flags: number, id: number, value: unknown): Buffer[] {
  const payload = Buffer.from(JSON.stringify(value), 'utf8');
  return [encodeHeader(type, flags, id, payload.length), payload];
}

export function encodeWindow(id: number, increment: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + 4);
  frame[0] = FrameType.WINDOW;
  frame[1] = 0;
  frame.writeUInt32BE(id, 2);
  frame.writeUInt32BE(4, 6);
  frame.writeUInt32BE(increment, 10);
  return frame;
}

/**
 * Splits one WebSocket message into frames. Payloads are views into
 * `message` (no copy). Throws FrameError on a truncated frame, an unknown
 * type or flag, or a frame on the wrong exchange id for its type.
 */
export function decodeFrames(message: Buffer, onFrame: (frame: Frame) => void): void {
  let offset = 0;
  while (offset < message.length) {
    if (message.length - offset < HEADER_SIZE) {
      throw new FrameError(`truncated frame header at byte ${offset} of a ${message.length}-byte message`);
    }
    const type = message[offset];
    const flags = message[offset + 1];
    const id = message.readUInt32BE(offset + 2);
    const length = message.readUInt32BE(offset + 6);
    const start = offset + HEADER_SIZE;
    if (TYPE_NAMES[type] === undefined) throw new FrameError(`unknown frame type ${type} on exchange ${id}`);
    if (flags !== 0 && (flags !== FLAG_END || !END_ALLOWED.has(type))) {
      throw new FrameError(`${typeName(type)} frame on exchange ${id} has unknown flags 0x${flags.toString(16)}`);
    }
    if ((type === FrameType.CONTROL) !== (id === 0)) {
      throw new FrameError(type === FrameType.CONTROL ? `CONTROL frame on exchange ${id}, expected 0` : `${typeName(type)} frame on exchange 0`);
    }
    if (start + length > message.length) {
      throw new FrameError(`${typeName(type)} frame on exchange ${id} claims ${length} bytes, the message has ${message.length - start}`);
    }
    if (type !== FrameType.DATA && type !== FrameType.WINDOW && length > MAX_JSON_PAYLOAD) {
      throw new FrameError(`${typeName(type)} frame on exchange ${id} has ${length} bytes, more than ${MAX_JSON_PAYLOAD}`);
    }
    const shared = length < message.length - HEADER_SIZE;
    onFrame({ type: type as FrameType, flags, id, payload: length === 0 ? EMPTY : message.subarray(start, start + length), shared });
    offset = start + length;
  }
}

/** The JSON value of a frame's payload, or undefined when it is not JSON. */
export function parseJsonPayload(frame: Frame): unknown {
  try {
    return JSON.parse(frame.payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function parseWindowPayload(frame: Frame): number {
  if (frame.payload.length !== 4) {
    throw new FrameError(`WINDOW frame on exchange ${frame.id} has ${frame.payload.length} payload bytes, expected 4`);
  }
  return frame.payload.readUInt32BE(0);
}
