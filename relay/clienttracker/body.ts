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
 * A body gathered in memory up to `limit` bytes (0 = no limit), reported to
 * `done` once; `settle` runs first (the caller's listeners come off).
 */
class Gathered {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private finished = false;

  constructor(
    private readonly limit: number,
    private readonly done: (result: BodyResult) => void,
    private readonly settle: () => void = () => undefined,
  ) {}

  /** Keeps `chunk` and returns true; over the limit it reports `tooLarge` instead. Once finished it keeps nothing. */
  add(chunk: Buffer): boolean {
    if (this.finished) return false;
    this.length += chunk.length;
    if (this.limit > 0 && this.length > this.limit) {
      this.finish({ ok: false, tooLarge: true });
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  end(): void {
    this.finish({ ok: true, body: this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length) });
  }

  fail(error: Error): void {
    this.finish({ ok: false, tooLarge: false, error });
  }

  private finish(result: BodyResult): void {
    if (this.stop()) this.done(result);
  }

  /** Stops without reporting; false if it had finished already. */
  stop(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.settle();
    return true;
  }
}

/**
 * Collects the rest of an exchange's body up to `limit` bytes. Credit is
 * granted as bytes arrive (the buffer is bounded by `limit`). Over the limit
 * it reports `tooLarge` at once (the caller resets the exchange); a reset
 * reports the error.
 */
export function collectExchange(ex: Exchange, limit: number, done: (result: BodyResult) => void): void {
  const body = new Gathered(limit, done);
  // An OPEN (or REPLY) that carried END has no body and no 'end' event to come.
  if (ex.peerEnded) {
    body.end();
    return;
  }
  ex.on('data', (chunk) => {
    if (body.add(chunk)) ex.consumed(chunk.length);
  });
  ex.once('end', () => body.end());
  ex.once('reset', (err: CtbridgeError) => body.fail(err));
}

/**
 * Collects `src` up to `limit` bytes (0 = no limit). Over the limit (declared
 * or counted) it stops listening and reports `tooLarge` at once; the caller
 * destroys the source after answering. Returns a function that stops
 * collecting without calling `done`.
 */
export function collectBody(src: IncomingMessage, limit: number, done: (result: BodyResult) => void): () => void {
  const declared = declaredLength(firstValue(src.headers['content-length']));
  if (limit > 0 && declared !== undefined && declared > limit) {
    src.on('error', ignore);
    queueMicrotask(() => done({ ok: false, tooLarge: true, declared }));
    return () => undefined;
  }
  const body = new Gathered(limit, done, () => {
    src.off('data', onData);
    src.off('end', onEnd);
    src.off('close', onClose);
    src.off('error', onError);
    // Late errors (e.g. from destroying the source) must not go unhandled.
    src.on('error', ignore);
  });
  const onData = (chunk: Buffer): void => void body.add(chunk);
  const onEnd = (): void => body.end();
  const onError = (err: Error): void => body.fail(err);
  const onClose = (): void => {
    if (!src.complete) body.fail(new Error('the answer was cut off before it was complete'));
  };
  src.on('data', onData);
  src.on('end', onEnd);
  src.on('close', onClose);
  src.on('error', onError);
  return () => void body.stop();
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
