import { CtbridgeError } from '../errors.js';

/** A request body over `limit` bytes (413), with the numbers as data for every renderer. */
export function tooLarge(what: 'request' | 'answer', limit: number, hint?: string): CtbridgeError {
  const subject = what === 'request' ? 'the request body' : "the target's answer";
  return new CtbridgeError('CTB_BODY_TOO_LARGE', `${subject} is larger than the limit of ${limit} bytes`, {
    hint: hint ?? "raise limits.maxRequestBody (or the tunnel's maxRequestBody) in the config if this size is expected",
    params: { bytes: limit, body: what },
  });
}
