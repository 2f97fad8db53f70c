import { Transform, type TransformCallback } from 'node:stream';
import { CtbridgeError } from '../errors.js';

/**
 * Counts body bytes on their way through and fails once they pass `limit`
 * (for bodies without a Content-Length; declared lengths are checked before
 * anything is sent).
 */
export class BodyLimit extends Transform {
  bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limit > 0 && this.bytes > this.limit) {
      callback(tooLarge(this.what, this.limit));
      return;
    }
    callback(null, chunk);
  }
}

export function tooLarge(what: string, limit: number): CtbridgeError {
  return new CtbridgeError('CTB_BODY_TOO_LARGE', `${what} is larger than the limit of ${limit} bytes`, {
    hint: 'raise limits.maxRequestBody (or the tunnel\'s maxRequestBody) in the config if this size is expected',
  });
}

/** The declared Content-Length, or undefined when the body is chunked or absent. */
export function declaredLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const n = Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
