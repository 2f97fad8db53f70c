/**
 * One provider message sent to the relay: a new exchange of kind `egress`
 * (`POST /<message>` with the XML as its body), the relay's answer
 * (Client Tracker's) read whole, or the relay's error as data. Never
 * retried and never reused: a push must not be sent twice, and once the
 * body has left, nobody here can know whether Client Tracker got it.
 */
import { CtbridgeError, type ErrorCode } from '../../src/errors.js';
import type { Exchange } from '../../src/mux/exchange.js';
import type { MuxSession } from '../../src/mux/session.js';
import { SOFTWARE_VERSION } from '../../src/protocol.js';
import { MAX_CT_ANSWER } from '../../src/xml/egress-messages.js';
import { XML_CONTENT_TYPE } from '../../src/xml/kinds.js';

/**
 * Errors with which the relay turns a message down before sending it on:
 * the message certainly did not go to Client Tracker.
 */
const REFUSED_BY_RELAY: ReadonlySet<ErrorCode> = new Set([
  'CTB_TUNNEL_NOT_ALLOWED', 'CTB_AGENT_BUSY', 'CTB_SHUTTING_DOWN', 'CTB_PATH_NOT_ALLOWED', 'CTB_BAD_REQUEST', 'CTB_BODY_TOO_LARGE',
]);

export type ForwardOutcome =
  | { ok: true; status: number; headers: readonly string[]; body: Buffer }
  /** `sent`: false when the relay certainly did not pass the message on; 'maybe' otherwise. */
  | { ok: false; error: CtbridgeError; sent: false | 'maybe' };

export interface ForwardOptions {
  tunnel: string;
  message: string;
  body: Buffer;
  requestId: string;
  /** Whole exchange, ms. */
  timeoutMs: number;
}

/** Sends the message on a new exchange of `session`; resolves once (never rejects). */
export function forwardMessage(session: MuxSession, opts: ForwardOptions): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let ex: Exchange;
    try {
      ex = session.request({
        kind: 'egress',
        tunnel: opts.tunnel,
        method: 'POST',
        target: `/${opts.message}`,
        headers: ['Content-Type', XML_CONTENT_TYPE, 'Content-Length', String(opts.body.length), 'User-Agent', SOFTWARE_VERSION],
        requestId: opts.requestId,
      }, false);
    } catch (err) {
      resolve({ ok: false, error: err instanceof CtbridgeError ? err : new CtbridgeError('CTB_RELAY_UNREACHABLE', String(err)), sent: false });
      return;
    }
    let finished = false;
    const finish = (outcome: ForwardOutcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      const seconds = Math.round(opts.timeoutMs / 100) / 10;
      const err = new CtbridgeError('CTB_REQUEST_TIMEOUT', `no answer from the relay within ${seconds} s`, { params: { seconds } });
      ex.reset(err);
      finish({ ok: false, error: err, sent: 'maybe' });
    }, opts.timeoutMs);
    ex.once('reset', (err) => {
      const refused = REFUSED_BY_RELAY.has(err.code) && !ex.response;
      finish({ ok: false, error: err, sent: refused ? false : 'maybe' });
    });
    ex.once('response', (head) => {
      const chunks: Buffer[] = [];
      let size = 0;
      ex.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_CT_ANSWER) {
          const err = new CtbridgeError('CTB_BODY_TOO_LARGE', `the answer from the relay is larger than ${MAX_CT_ANSWER} bytes`);
          ex.reset(err);
          finish({ ok: false, error: err, sent: 'maybe' });
          return;
        }
        chunks.push(chunk);
        ex.consumed(chunk.length);
      });
      ex.once('end', () => finish({ ok: true, status: head.status, headers: head.headers, body: Buffer.concat(chunks, size) }));
    });
    ex.send(opts.body);
    ex.end();
  });
}
