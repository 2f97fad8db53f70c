import { describe, expect, it } from 'vitest';
import {
  decodeFrames,
  encodeHeader,
  encodeJson,
  encodeWindow,
  FLAG_END,
  FrameError,
  FrameType,
  HEADER_SIZE,
  MAX_JSON_PAYLOAD,
  parseJsonPayload,
  parseWindowPayload,
  type Frame,
} from '../../../src/mux/frame.js';

/** One frame's bytes: header plus payload. */
function frame(type: number, flags: number, id: number, payload: Buffer | string = Buffer.alloc(0), claimed?: number): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(HEADER_SIZE);
  header[0] = type;
  header[1] = flags;
  header.writeUInt32BE(id, 2);
  header.writeUInt32BE(claimed ?? body.length, 6);
  return Buffer.concat([header, body]);
}

function decodeAll(message: Buffer): Frame[] {
  const frames: Frame[] = [];
  decodeFrames(message, (f) => frames.push(f));
  return frames;
}

/** The FrameError decoding `message` throws, and the frames delivered before it. */
function failure(message: Buffer): { error: FrameError; before: Frame[] } {
  const before: Frame[] = [];
  try {
    decodeFrames(message, (f) => before.push(f));
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe('CTB_PROTOCOL');
    return { error: err as FrameError, before };
  }
  throw new Error('decodeFrames accepted the message');
}

describe('frame encoding', () => {
  it('round-trips every frame type, several to a message, with payloads as views into it', () => {
    const message = Buffer.concat([
      ...encodeJson(FrameType.OPEN, FLAG_END, 1, { kind: 'http' }),
      ...encodeJson(FrameType.REPLY, 0, 1, { status: 200, headers: [] }),
      encodeHeader(FrameType.DATA, 0, 3, 5), Buffer.from('hello'),
      encodeHeader(FrameType.DATA, FLAG_END, 3, 0),
      ...encodeJson(FrameType.RESET, 0, 5, { code: 'CTB_CANCELLED', message: 'x' }),
      encodeWindow(7, 65536),
      ...encodeJson(FrameType.CONTROL, 0, 0, { type: 'drain', reason: 'bye' }),
    ]);
    const frames = decodeAll(message);
    expect(frames.map((f) => [f.type, f.flags, f.id])).toEqual([
      [FrameType.OPEN, FLAG_END, 1],
      [FrameType.REPLY, 0, 1],
      [FrameType.DATA, 0, 3],
      [FrameType.DATA, FLAG_END, 3],
      [FrameType.RESET, 0, 5],
      [FrameType.WINDOW, 0, 7],
      [FrameType.CONTROL, 0, 0],
    ]);
    expect(parseJsonPayload(frames[0])).toEqual({ kind: 'http' });
    expect(frames[2].payload.toString()).toBe('hello');
    expect(frames[2].payload.buffer).toBe(message.buffer); // no copy
    expect(frames[2].shared).toBe(true);
    expect(frames[3].payload.length).toBe(0);
    expect(parseWindowPayload(frames[5])).toBe(65536);
    expect(parseJsonPayload(frames[6])).toEqual({ type: 'drain', reason: 'bye' });
  });

  it('marks a frame alone in its message as not shared', () => {
    const [only] = decodeAll(Buffer.concat([encodeHeader(FrameType.DATA, 0, 1, 3), Buffer.from('abc')]));
    expect(only.shared).toBe(false);
  });

  it('takes DATA payloads larger than the JSON limit', () => {
    const big = Buffer.alloc(MAX_JSON_PAYLOAD + 1, 7);
    const [f] = decodeAll(frame(FrameType.DATA, 0, 1, big));
    expect(f.payload.length).toBe(MAX_JSON_PAYLOAD + 1);
  });

  it('parseJsonPayload: undefined for a payload that is not JSON', () => {
    const [f] = decodeAll(frame(FrameType.OPEN, 0, 1, '{"kind":'));
    expect(parseJsonPayload(f)).toBeUndefined();
  });

  it('parseWindowPayload: a WINDOW payload must be exactly 4 bytes', () => {
    for (const size of [0, 3, 5]) {
      const [f] = decodeAll(frame(FrameType.WINDOW, 0, 1, Buffer.alloc(size)));
      expect(() => parseWindowPayload(f)).toThrow(`WINDOW frame on exchange 1 has ${size} payload bytes, expected 4`);
    }
  });
});

describe('frame decoding refuses', () => {
  it('a truncated header, at the start or after a good frame', () => {
    expect(failure(Buffer.alloc(5)).error.message).toBe('truncated frame header at byte 0 of a 5-byte message');
    const good = frame(FrameType.DATA, 0, 1, 'ab');
    const { error, before } = failure(Buffer.concat([good, Buffer.alloc(HEADER_SIZE - 1)]));
    expect(error.message).toBe(`truncated frame header at byte ${good.length} of a ${good.length + HEADER_SIZE - 1}-byte message`);
    expect(before).toHaveLength(1); // the good frame was delivered first
  });

  it('a length that runs past the end of the message', () => {
    const { error, before } = failure(frame(FrameType.DATA, 0, 1, 'abcdefghij', 100));
    expect(error.message).toBe('DATA frame on exchange 1 claims 100 bytes, the message has 10');
    expect(before).toEqual([]);
    expect(failure(frame(FrameType.OPEN, 0, 1, '', 0xffff_ffff)).error.message).toContain('claims 4294967295 bytes');
  });

  it('an unknown frame type', () => {
    expect(failure(frame(7, 0, 1)).error.message).toBe('unknown frame type 7 on exchange 1');
    expect(failure(frame(0, 0, 1)).error.message).toBe('unknown frame type 0 on exchange 1');
    expect(failure(frame(255, 0, 0)).error.message).toBe('unknown frame type 255 on exchange 0');
  });

  it('an unknown flag, alone or next to END', () => {
    expect(failure(frame(FrameType.DATA, 2, 1)).error.message).toBe('DATA frame on exchange 1 has unknown flags 0x2');
    expect(failure(frame(FrameType.OPEN, FLAG_END | 0x80, 1)).error.message).toBe('OPEN frame on exchange 1 has unknown flags 0x81');
  });

  it.each([
    ['RESET', FrameType.RESET, 1],
    ['WINDOW', FrameType.WINDOW, 1],
    ['CONTROL', FrameType.CONTROL, 0],
  ])('END on a %s frame, which cannot carry it', (name, type, id) => {
    expect(failure(frame(type, FLAG_END, id)).error.message).toBe(`${name} frame on exchange ${id} has unknown flags 0x1`);
  });

  it('accepts END on OPEN, REPLY and DATA', () => {
    for (const type of [FrameType.OPEN, FrameType.REPLY, FrameType.DATA]) {
      expect(decodeAll(frame(type, FLAG_END, 1))[0].flags).toBe(FLAG_END);
    }
  });

  it('a CONTROL frame on a non-zero exchange id', () => {
    expect(failure(frame(FrameType.CONTROL, 0, 5, '{"type":"x"}')).error.message).toBe('CONTROL frame on exchange 5, expected 0');
  });

  it.each([
    ['OPEN', FrameType.OPEN],
    ['REPLY', FrameType.REPLY],
    ['DATA', FrameType.DATA],
    ['RESET', FrameType.RESET],
    ['WINDOW', FrameType.WINDOW],
  ])('a %s frame on exchange 0', (name, type) => {
    expect(failure(frame(type, 0, 0)).error.message).toBe(`${name} frame on exchange 0`);
  });

  it.each([
    ['OPEN', FrameType.OPEN, 1],
    ['REPLY', FrameType.REPLY, 1],
    ['RESET', FrameType.RESET, 1],
    ['CONTROL', FrameType.CONTROL, 0],
  ])('a %s JSON payload over the limit', (name, type, id) => {
    const over = Buffer.alloc(MAX_JSON_PAYLOAD + 1, 0x20);
    expect(failure(frame(type, 0, id, over)).error.message).toBe(`${name} frame on exchange ${id} has ${MAX_JSON_PAYLOAD + 1} bytes, more than ${MAX_JSON_PAYLOAD}`);
    // Exactly at the limit is fine.
    expect(decodeAll(frame(type, 0, id, Buffer.alloc(MAX_JSON_PAYLOAD, 0x20)))).toHaveLength(1);
  });
});
