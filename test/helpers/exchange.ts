/**
 * Exchanges as the tests drive them: request heads with defaults, the whole
 * outcome of an exchange (response head, body, or the reset that ended it),
 * and an echoing responder.
 */
import type { CtbridgeError } from '../../src/errors.js';
import { getHeader } from '../../src/http/headers.js';
import type { Exchange } from '../../src/mux/exchange.js';
import type { RequestHead, ResponseHead } from '../../src/mux/heads.js';
import type { MuxSession } from '../../src/mux/session.js';

export function head(fields: Partial<RequestHead> = {}): RequestHead {
  return { kind: 'http', tunnel: 't1', method: 'GET', target: '/', headers: [], requestId: 'req-1', ...fields };
}

export interface Outcome {
  /** The REPLY head, if one came. */
  response: ResponseHead | undefined;
  /** Status of the REPLY (0 without one). */
  status: number;
  /** Raw response header pairs ([] without a REPLY). */
  headers: string[];
  /** The first value of a response header (name in lower case). */
  header(name: string): string | undefined;
  /** Every body byte that arrived (up to the reset, if any). */
  body: Buffer;
  text: string;
  /** The error of the RESET (or lost connection) that ended the exchange. */
  error: CtbridgeError | undefined;
}

/**
 * Reads an exchange to its end: response head, body (granting credit as it
 * arrives) and END, or the reset. Never rejects.
 */
export function outcome(ex: Exchange): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let response: ResponseHead | undefined = ex.response;
    let error: CtbridgeError | undefined;
    const done = (): void => {
      const body = Buffer.concat(chunks);
      const headers = response?.headers ?? [];
      resolve({ response, status: response?.status ?? 0, headers, header: (n) => getHeader(headers, n), body, text: body.toString('utf8'), error });
    };
    ex.on('response', (h) => (response = h));
    ex.on('data', (chunk) => {
      chunks.push(chunk);
      ex.consumed(chunk.length);
    });
    ex.once('reset', (err) => (error = err));
    ex.once('close', done);
  });
}

export type Pending = Promise<Outcome> & { exchange: Exchange };

/**
 * Opens an exchange on `session` with `fields` as its head, sends `body`
 * under the exchange's credit, ends it, and collects the outcome. Without a
 * body the OPEN carries END; with `body: 'open'` the exchange is left open
 * for the test to send on and end.
 */
export function exchange(session: MuxSession, fields: Partial<RequestHead> = {}, body?: string | Buffer | 'open'): Pending {
  const buf = body === undefined || body === 'open' ? undefined : Buffer.from(body);
  const ex = session.request(head(fields), body === undefined);
  const result = outcome(ex);
  if (buf !== undefined) {
    if (buf.length > 0) ex.send(buf);
    ex.end();
  }
  return Object.assign(result, { exchange: ex });
}

/** Answers every exchange `session` receives with 200 and its own request body, under flow control both ways. */
export function echo(session: MuxSession): void {
  session.on('exchange', (ex) => {
    ex.respond({ status: 200, headers: ['X-Echo', ex.head.target] });
    let owed = 0;
    ex.on('data', (chunk) => {
      if (ex.send(chunk)) ex.consumed(chunk.length);
      else owed += chunk.length;
    });
    ex.on('drain', () => {
      ex.consumed(owed);
      owed = 0;
    });
    // An OPEN with END carries no body: no 'end' event follows.
    if (ex.peerEnded) ex.end();
    else ex.on('end', () => ex.end());
  });
}

/** Resolves once `fn()` is truthy, checking after every event-loop turn (gives up after `timeoutMs`). */
export async function until<T>(fn: () => T | undefined | null | false, what = 'condition', timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}
