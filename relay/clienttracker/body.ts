/**
 * Reading a whole body into memory, up to a limit: an exchange's (the
 * provider's answer through the agent) or an HTTP message's (Client
 * Tracker's answer to the relay), and undoing its content encoding.
 */
import type { IncomingMessage } from 'node:http';
import zlib from 'node:zlib';
import type { CtbridgeError } from '../../src/errors.js';
import { declaredLength, firstValue } from '../../src/http/headers.js';
import type { Exchange } from '../../src/mux/exchange.js';

export type BodyResult =
  | { ok: true; body: Buffer }
  | { ok: false; tooLarge: true; declared?: number }
  | { ok: false; tooLarge: false; error: Error };

/**
 * Collects the rest of an exchange's body up to `limit` bytes. Credit is
 * granted as bytes arrive (the buffer is bounded by `limit`). Over the limit
 * it reports `tooLarge` at once (the caller resets the exchange); a reset
 * reports the error.
 */
export function collectExchange(ex: Exchange, limit: number, done: (result: BodyResult) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  let finished = false;
  const finish = (result: BodyResult): void => {
    if (finished) return;
    finished = true;
    done(result);
  };
  // An OPEN (or REPLY) that carried END has no body and no 'end' event to come.
  if (ex.peerEnded) {
    finish({ ok: true, body: Buffer.alloc(0) });
    return;
  }
  ex.on('data', (chunk) => {
    if (finished) return;
    length += chunk.length;
    if (limit > 0 && length > limit) {
      finish({ ok: false, tooLarge: true });
      return;
    }
    chunks.push(chunk);
    ex.consumed(chunk.length);
  });
  ex.once('end', () => finish({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length) }));
  ex.once('reset', (err: CtbridgeError) => finish({ ok: false, tooLarge: false, error: err }));
}

/**
 * Collects `src` up to `limit` bytes (0 = no limit). Over the limit (declared
 * or counted) it stops listening and reports `tooLarge` at once; the caller
 * destroys the source after answering. Returns a function that stops
 * collecting without calling `done`.
 */
export function collectBody(src: IncomingMessage, limit: number, done: (result: BodyResult) => void): () => void {
  const chunks: Buffer[] = [];
  let length = 0;
  let finished = false;
  const finish = (result: BodyResult): void => {
    if (finished) return;
    finished = true;
    cleanup();
    done(result);
  };
  const onData = (chunk: Buffer): void => {
    if (finished) return;
    length += chunk.length;
    if (limit > 0 && length > limit) {
      finish({ ok: false, tooLarge: true });
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => finish({ ok: true, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length) });
  const onError = (err: Error): void => finish({ ok: false, tooLarge: false, error: err });
  const onClose = (): void => {
    if (!src.complete) finish({ ok: false, tooLarge: false, error: new Error('the answer was cut off before it was complete') });
  };
  const cleanup = (): void => {
    src.off('data', onData);
    src.off('end', onEnd);
    src.off('close', onClose);
    src.off('error', onError);
    // Late errors (e.g. from destroying the source) must not go unhandled.
    src.on('error', ignore);
  };

  const declared = declaredLength(firstValue(src.headers['content-length']));
  if (limit > 0 && declared !== undefined && declared > limit) {
    finished = true;
    src.on('error', ignore);
    queueMicrotask(() => done({ ok: false, tooLarge: true, declared }));
    return () => undefined;
  }
  src.on('data', onData);
  src.on('end', onEnd);
  src.on('close', onClose);
  src.on('error', onError);
  return () => {
    if (finished) return;
    finished = true;
    cleanup();
  };
}

function ignore(): void {}

export type DecodeResult = { ok: true; body: Buffer; decoded: boolean } | { ok: false; tooLarge: boolean; reason: string };

/**
 * Undoes a gzip / deflate / br Content-Encoding, so the XML inside can be
 * checked. The decoded size is capped too (a small compressed answer can
 * expand without bound). `identity` or none: the body as it is.
 */
export function decodeBody(body: Buffer, contentEncoding: string | undefined, limit: number, done: (result: DecodeResult) => void): void {
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') {
    done({ ok: true, body, decoded: false });
    return;
  }
  const options = limit > 0 ? { maxOutputLength: limit } : {};
  const callback = (err: Error | null, out: Buffer): void => {
    if (err) {
      const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError;
      done({ ok: false, tooLarge, reason: tooLarge ? 'too large once decompressed' : `cannot be decompressed (${encoding})` });
    } else done({ ok: true, body: out, decoded: true });
  };
  if (encoding === 'gzip' || encoding === 'x-gzip') zlib.gunzip(body, options, callback);
  else if (encoding === 'deflate') zlib.inflate(body, options, callback);
  else if (encoding === 'br') zlib.brotliDecompress(body, options, callback);
  else done({ ok: false, tooLarge: false, reason: `uses the content encoding '${encoding.slice(0, 40)}', which the bridge cannot read` });
}
