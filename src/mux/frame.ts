/**
 * Wire format of the multiplexer. One binary WebSocket message carries one or
 * more frames back to back (the session batches the frames of one event-loop
 * turn into a single message):
 *
 *   [type u8][streamId u32 BE][length u32 BE][payload: length bytes]
 *
 * Stream 0 carries CONTROL frames only. Payloads: OPEN and RESET and CONTROL
 * are UTF-8 JSON; DATA is raw bytes; END is empty; WINDOW is a u32 credit
 * increment in bytes.
 */
import { CtbridgeError } from '../errors.js';

export const HEADER_SIZE = 9;
/** Largest DATA payload the session puts in one frame. */
export const MAX_DATA_PAYLOAD = 64 * 1024;

export const FrameType = {
  OPEN: 1,
  DATA: 2,
  END: 3,
  RESET: 4,
  WINDOW: 5,
  CONTROL: 6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

export interface Frame {
  type: FrameType;
  streamId: number;
  payload: Buffer;
  /** The payload is a view into a message that carries other frames too. */
  shared: boolean;
}

const EMPTY = Buffer.alloc(0);

export function encodeHeader(type: FrameType, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = type;
  header.writeUInt32BE(streamId, 1);
  header.writeUInt32BE(length, 5);
  return header;
}

export function encodeJson(type: FrameType, streamId: number, value: unknown): Buffer[] {
  const payload = Buffer.from(JSON.stringify(value), 'utf8');
  return [encodeHeader(type, streamId, payload.length), payload];
}

export function encodeWindow(streamId: number, increment: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + 4);
  frame[0] = FrameType.WINDOW;
  frame.writeUInt32BE(streamId, 1);
  frame.writeUInt32BE(4, 5);
  frame.writeUInt32BE(increment, 9);
  return frame;
}

export function encodeEmpty(type: FrameType, streamId: number): Buffer {
  return encodeHeader(type, streamId, 0);
}

/**
 * Splits one WebSocket message into frames. Payloads are views into `message`
 * (no copy). Throws CTB_PROTOCOL on a truncated or unknown frame: the peer is
 * broken or speaks another version, and the session must be closed.
 */
export function decodeFrames(message: Buffer, onFrame: (frame: Frame) => void): void {
  let offset = 0;
  while (offset < message.length) {
    if (message.length - offset < HEADER_SIZE) {
      throw new CtbridgeError('CTB_PROTOCOL', `truncated frame header at byte ${offset} of a ${message.length}-byte message`);
    }
    const type = message[offset];
    const streamId = message.readUInt32BE(offset + 1);
    const length = message.readUInt32BE(offset + 5);
    const start = offset + HEADER_SIZE;
    if (!KNOWN_TYPES.has(type)) {
      throw new CtbridgeError('CTB_PROTOCOL', `unknown frame type ${type} on stream ${streamId}`, {
        hint: 'the relay and agent run incompatible ctbridge versions; upgrade the older one',
      });
    }
    if (start + length > message.length) {
      throw new CtbridgeError('CTB_PROTOCOL', `frame on stream ${streamId} claims ${length} bytes, message has ${message.length - start}`);
    }
    const shared = length < message.length - HEADER_SIZE;
    onFrame({ type: type as FrameType, streamId, payload: length === 0 ? EMPTY : message.subarray(start, start + length), shared });
    offset = start + length;
  }
}

export function parseJsonPayload<T>(frame: Frame): T {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T;
  } catch {
    throw new CtbridgeError('CTB_PROTOCOL', `frame type ${frame.type} on stream ${frame.streamId} has a payload that is not JSON`);
  }
}

export function parseWindowPayload(frame: Frame): number {
  if (frame.payload.length !== 4) {
    throw new CtbridgeError('CTB_PROTOCOL', `WINDOW frame on stream ${frame.streamId} has ${frame.payload.length} payload bytes, expected 4`);
  }
  return frame.payload.readUInt32BE(0);
}
