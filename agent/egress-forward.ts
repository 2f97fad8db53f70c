/**
 * One provider message sent to the relay: a new mux stream with meta
 * `{kind:'egress', tunnel}`, one HTTP/1.1 POST on it, the relay's answer
 * (Client Tracker's, or the relay's own XML error) read whole, the stream
 * closed. Never retried and never pooled: a push must not be sent twice, and
 * once the body has left, nobody here can know whether Client Tracker got it.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { CtbridgeError, type ErrorCode } from '../src/errors.js';
import type { MuxSession } from '../src/mux/session.js';
import type { TunnelStream } from '../src/mux/stream.js';
import { SOFTWARE_VERSION } from '../src/protocol.js';
import { XML_CONTENT_TYPE } from '../src/xml/kinds.js';

/** Client Tracker's answers are small; more than this is not one (the relay has the same cap). */
export const MAX_RELAY_ANSWER = 10 * 1024 * 1024;

/**
 * RESET codes with which the relay refuses a stream when it arrives, before
 * reading a byte of it: the message certainly did not go to Client Tracker.
 */
const REFUSED_AT_OPEN: ReadonlySet<string> = new Set(['CTB_TUNNEL_NOT_ALLOWED', 'CTB_AGENT_BUSY', 'CTB_SHUTTING_DOWN']);

export type ForwardOutcome =
  | { ok: true; status: number; headers: IncomingHttpHeaders; body: Buffer }
  /** `sent`: false when the relay certainly did not pass the message on; 'maybe' otherwise. */
  | { ok: false; code: ErrorCode; reason: string; sent: false | 'maybe' };

export interface ForwardOptions {
  tunnel: string;
  message: string;
  body: Buffer;
  /** Whole exchange, ms. */
  timeoutMs: number;
}

function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof CtbridgeError ? err.code : undefined;
}

/** POSTs `body` to `/<message>` on a new egress stream of `session`; resolves once (never rejects). */
export function forwardMessage(session: MuxSession, opts: ForwardOptions): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let stream: TunnelStream;
    try {
      stream = session.openStream({ kind: 'egress', tunnel: opts.tunnel });
    } catch (err) {
      resolve({ ok: false, code: 'CTB_RELAY_UNREACHABLE', reason: err instanceof Error ? err.message : String(err), sent: false });
      return;
    }
    let finished = false;
    let streamError: Error | undefined;
    let gotResponse = false;
    let bytesReceived = 0;
    const finish = (outcome: ForwardOutcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (!outcome.ok) stream.destroy();
      // A clean exchange ends the stream both ways (Connection: close); make sure it does not linger.
      else setTimeout(() => stream.destroy(), 2000).unref();
      resolve(outcome);
    };
    const failed = (err: Error | undefined): void => {
      const cause = streamError ?? err;
      const code = errorCode(cause);
      const reason = cause?.message || 'the stream to the relay closed early';
      if (code && REFUSED_AT_OPEN.has(code) && !gotResponse) finish({ ok: false, code, reason, sent: false });
      else if (code === 'CTB_REQUEST_TIMEOUT' || code === 'CTB_PROTOCOL') finish({ ok: false, code, reason, sent: 'maybe' });
      else if (code === 'CTB_BODY_TOO_LARGE') finish({ ok: false, code: 'CTB_UPSTREAM_INVALID', reason, sent: 'maybe' });
      else finish({ ok: false, code: 'CTB_AGENT_DISCONNECTED', reason, sent: 'maybe' });
    };
    stream.on('error', (err) => {
      streamError ??= err;
    });
    const timer = setTimeout(() => {
      const seconds = Math.round(opts.timeoutMs / 100) / 10;
      stream.destroy(new CtbridgeError('CTB_REQUEST_TIMEOUT', `no answer from the relay within ${seconds} s`));
    }, opts.timeoutMs);

    const req = http.request({
      createConnection: () => stream as never,
      method: 'POST',
      path: `/${opts.message}`,
      headers: {
        host: 'ctbridge-relay',
        'content-type': XML_CONTENT_TYPE,
        'content-length': opts.body.length,
        'user-agent': SOFTWARE_VERSION,
      },
    });
    req.on('error', (err) => failed(err));
    req.on('response', (res) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytesReceived += chunk.length;
        if (bytesReceived > MAX_RELAY_ANSWER) {
          stream.destroy(new CtbridgeError('CTB_BODY_TOO_LARGE', `the answer from the relay is larger than ${MAX_RELAY_ANSWER} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        finish({ ok: true, status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', (err) => failed(err));
      res.on('close', () => {
        if (!res.complete) failed(undefined);
      });
    });
    req.end(opts.body);
  });
}
