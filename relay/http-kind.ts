/**
 * The plain `http` tunnel kind: the agent's response goes to the caller as
 * it comes (status, raw header pairs in order, body under flow control),
 * and bridge errors are JSON in the shape a UC web service uses.
 */
import type { ServerResponse } from 'node:http';
import { CtbridgeError } from '../src/errors.js';
import { sendError } from '../src/http/error-response.js';
import { declaredLength, endToEnd, getHeader } from '../src/http/headers.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { ResponseHead } from '../src/mux/heads.js';
import { REQUEST_ID_HEADER } from '../src/protocol.js';
import type { ExchangeContext, KindHandler } from './tunnel-kind.js';

const OURS: ReadonlySet<string> = new Set([REQUEST_ID_HEADER]);

/**
 * The header pairs the caller gets: the agent's end-to-end fields (its
 * hop-by-hop fields are the agent's business, and a forged request id is
 * dropped), `alsoDrop`, then the relay's request id.
 */
export function callerHeaders(pairs: readonly string[], requestId: string, alsoDrop: readonly string[] = []): string[] {
  const out = endToEnd(pairs, { alsoDrop: alsoDrop.length ? new Set([...OURS, ...alsoDrop]) : OURS });
  out.push('X-Ctbridge-Request-Id', requestId);
  return out;
}

/**
 * Writes the response head. Node checks the fields once more; a value it
 * refuses means the agent sent something no HTTP peer may, so the exchange
 * is a protocol failure rather than a crash.
 */
export function writeHead(res: ServerResponse, status: number, statusText: string | undefined, headers: string[]): CtbridgeError | undefined {
  try {
    // A body longer or shorter than the agent's Content-Length must not reach
    // the caller's connection: it would be read as the next response.
    res.strictContentLength = true;
    res.writeHead(status, statusText, headers);
    return undefined;
  } catch (err) {
    res.removeHeader('content-length');
    return new CtbridgeError('CTB_PROTOCOL', `the agent's response head cannot be sent on: ${(err as Error).message}`);
  }
}

/**
 * The body from `ex` to `res`, with credit granted back as `res` takes the
 * bytes: a slow caller stalls only its own exchange. A body that runs past
 * the agent's own Content-Length is cut there (the response stays well
 * formed, nothing past it reaches the caller's connection) and the
 * exchange is reset as a protocol error; one that ends short is cut.
 */
export function streamBody(ex: Exchange, res: ServerResponse, head: ResponseHead): void {
  const limit = declaredLength(getHeader(head.headers, 'content-length'));
  let written = 0;
  let owed = 0;
  let waiting = false;
  const onDrain = (): void => {
    waiting = false;
    ex.consumed(owed);
    owed = 0;
  };
  ex.on('data', (chunk) => {
    if (res.destroyed || res.writableEnded) return;
    if (limit !== undefined && written + chunk.length > limit) {
      res.end(chunk.subarray(0, limit - written));
      ex.protocolError(`a body longer than its Content-Length of ${limit} bytes`);
      return;
    }
    written += chunk.length;
    if (res.write(chunk) && !waiting) ex.consumed(chunk.length);
    else {
      owed += chunk.length;
      if (!waiting) {
        waiting = true;
        res.once('drain', onDrain);
      }
    }
  });
  ex.on('end', () => {
    if (res.destroyed || res.writableEnded) return;
    try {
      res.end();
    } catch {
      // Shorter than its Content-Length (strictContentLength): the caller must see it incomplete.
      res.destroy();
    }
  });
  // A long-poll's head goes out even while its body is held; a body that
  // came in the same message has already taken it along.
  queueMicrotask(() => {
    if (written === 0 && !res.writableEnded && !res.destroyed) res.flushHeaders();
  });
}

/**
 * The UC web service's wording for the same condition, so existing clients
 * recognise it; else the code. Never the error's message: it names intranet
 * details that belong in the log line (src/http/error-response.ts).
 */
function detailsFor(err: CtbridgeError, tunnel: string): string {
  if (err.code === 'CTB_AGENT_NOT_CONNECTED' && tunnel) return `agent not connected here: [${tunnel}]`;
  return err.code;
}

export const httpKind: KindHandler = {
  respond(ex, head: ResponseHead, res, ctx: ExchangeContext) {
    const failed = writeHead(res, head.status, head.statusText, callerHeaders(head.headers, ctx.requestId));
    if (failed) {
      ex.reset(failed);
      ctx.code = failed.code;
      sendError(res, failed, { requestId: ctx.requestId });
      return;
    }
    streamBody(ex, res, head);
  },
  sendError(res, err, ctx) {
    sendError(res, err, { requestId: ctx.requestId, details: detailsFor(err, ctx.tunnel) });
  },
};
