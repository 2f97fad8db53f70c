/**
 * The relay's public side for WebSocket upgrades: the upgrade request goes
 * to the agent as an exchange of kind `upgrade` (the head carries `Upgrade`
 * and `Connection: upgrade`); after the target's 101 the exchange is a raw
 * byte pipe both ways between the caller's socket and the target's. Any
 * other answer of the target is written back as it is, and the connection
 * closes.
 *
 * Only `Upgrade: websocket` is carried. Another upgrade token (`h2c`, which
 * `curl --http2` sends) is ignored, as RFC 9110 allows, and the request is
 * answered as a plain request: it is handed back to the HTTP server, with
 * the bytes that followed it (a request pipelined behind it included).
 *
 * An upgrade whose agent link drops before the target answered it is sent
 * to another agent like any GET (relay/resend.ts); after the 101 the
 * caller's connection is cut.
 */
import type { IncomingMessage } from 'node:http';
import type http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { CtbridgeError } from '../src/errors.js';
import { endToEnd, getHeader, hopByHopFields, withoutHeaders } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { ResponseHead } from '../src/mux/heads.js';
import { pipeSocket } from '../src/mux/socket-pipe.js';
import { REQUEST_ID_HEADER } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import { nextRequestId } from '../src/request-id.js';
import type { Admission, Admitted } from './admission.js';
import { callerHeaders } from './http-kind.js';
import { asCtbridgeError } from './public-request.js';
import type { RelayMetrics } from './metrics.js';
import { rawHead, writeRawError } from './raw-response.js';
import { requestHead } from './request-head.js';
import { reportResend, resendReason } from './resend.js';

/** The upgrades the relay carries: WebSocket only. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade?.trim().toLowerCase() === 'websocket';
}

export class PublicUpgrades {
  /** Open WebSocket tunnels, for shutdown. */
  private readonly open = new Set<Duplex>();

  constructor(
    private readonly server: http.Server,
    private readonly admission: Admission,
    private readonly log: Logger,
    private readonly metrics?: RelayMetrics,
  ) {}

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!isWebSocketUpgrade(req)) {
      answerAsPlainRequest(this.server, req, socket, head);
      return;
    }
    const requestId = nextRequestId();
    let admitted: Admitted;
    try {
      admitted = this.admission.admit(req, {});
    } catch (err) {
      const refused = asCtbridgeError(err);
      this.log.info({ requestId, method: req.method, path: redactUrl(req.url ?? ''), upgrade: true, status: refused.status, code: refused.code, reason: refused.userMessage }, 'request refused');
      writeRawError(socket, refused, requestId);
      return;
    }
    const { route } = admitted;
    const method = req.method ?? 'GET';
    this.log.info({ requestId, tunnel: route.tunnel, agentId: admitted.hop.agent?.agentId, viaNode: admitted.hop.node, path: redactUrl(route.url), client: admitted.forwarded.client }, 'websocket upgrade');
    this.open.add(socket);
    const started = performance.now();
    let ex: Exchange | undefined;
    let resends = 0;
    const done = (status: number, code?: string, reason?: string): void => {
      const { hop } = admitted;
      this.log.info({ requestId, tunnel: route.tunnel, agentId: hop.agent?.agentId, viaNode: hop.node, status, upgrade: true, bytesIn: ex?.bytesOut ?? 0, bytesOut: ex?.bytesIn ?? 0, durationMs: Math.round(performance.now() - started), code, reason, resends: resends || undefined }, 'request');
    };
    const fail = (err: CtbridgeError): void => {
      clearTimeout(timer);
      writeRawError(socket, err, requestId);
      done(err.status, err.code, err.userMessage);
    };
    const timer = setTimeout(() => {
      ex?.reset(new CtbridgeError('CTB_TARGET_TIMEOUT', `tunnel '${route.tunnel}' did not answer the WebSocket upgrade within ${admitted.policy.timeouts.idle} ms`));
      writeRawError(socket, new CtbridgeError('CTB_TARGET_TIMEOUT', `tunnel '${route.tunnel}' did not answer the WebSocket upgrade in time`), requestId);
    }, admitted.policy.timeouts.idle);
    socket.once('close', () => {
      clearTimeout(timer);
      this.open.delete(socket);
      if (ex && !ex.closed && !ex.response) ex.reset(new CtbridgeError('CTB_CANCELLED', 'the caller left before the target answered the upgrade'));
    });
    /** The exchange died: before the 101 (or refusal) the upgrade may go to another agent (relay/resend.ts); after it, the connection is cut. */
    const onReset = (err: CtbridgeError): void => {
      if (ex?.response) {
        clearTimeout(timer);
        socket.destroy();
        return;
      }
      const failed = admitted.hop;
      const reason = socket.destroyed ? undefined : resendReason({ method, code: err.code, viaNode: failed.node !== undefined, body: 'empty', responseStarted: false, resends });
      const hop = reason && this.admission.rehop(route.tunnel, failed, reason === 'node_turned_away');
      if (!reason || !hop) {
        fail(err);
        return;
      }
      resends++;
      reportResend(this.log, this.metrics, { requestId, tunnel: route.tunnel, method, reason, code: err.code, resends, from: failed, to: hop });
      admitted.hop = hop;
      openExchange();
    };
    const openExchange = (): void => {
      try {
        ex = admitted.hop.session.request(requestHead(req, admitted, requestId, 'upgrade'), false);
      } catch (err) {
        ex = undefined;
        onReset(asCtbridgeError(err));
        return;
      }
      const opened = ex;
      opened.once('reset', onReset);
      opened.once('response', (reply) => {
        clearTimeout(timer);
        if (reply.status === 101) this.pipe(opened, socket, head, reply, requestId, done);
        else this.passRefusal(opened, socket, reply, requestId, done);
      });
    };
    openExchange();
  };

  /** Ends every open WebSocket tunnel (shutdown). */
  closeAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  /** After the 101: caller socket ⇄ exchange (src/mux/socket-pipe.ts). */
  private pipe(ex: Exchange, socket: Duplex, early: Buffer, reply: ResponseHead, requestId: string, done: (status: number) => void): void {
    socket.write(rawHead(101, reply.statusText, upgradeHeaders(reply.headers, requestId)));
    socket.once('close', () => done(101));
    if (early.length > 0) ex.send(early);
    pipeSocket(ex, socket, () => new CtbridgeError('CTB_CANCELLED', 'the caller closed the WebSocket connection'));
  }

  /** The target answered the upgrade with something else: that answer, then close. */
  private passRefusal(ex: Exchange, socket: Duplex, reply: ResponseHead, requestId: string, done: (status: number) => void): void {
    const headers = callerHeaders(reply.headers, requestId, ['connection']);
    headers.push('Connection', 'close');
    socket.write(rawHead(reply.status, reply.statusText, headers));
    ex.on('data', (chunk) => {
      socket.write(chunk);
      ex.consumed(chunk.length);
    });
    ex.once('end', () => {
      socket.end();
      done(reply.status);
    });
  }
}

const OURS: ReadonlySet<string> = new Set([REQUEST_ID_HEADER]);

/** The 101's fields: the target's end-to-end ones, its Upgrade, `Connection: upgrade`, the request id. */
function upgradeHeaders(pairs: readonly string[], requestId: string): string[] {
  const out = endToEnd(pairs, { keepUpgrade: true, alsoDrop: OURS });
  out.push('X-Ctbridge-Request-Id', requestId);
  return out;
}

/**
 * Gives a request with an upgrade the relay does not carry back to the HTTP
 * server as the plain request it also is: the head is written back in front
 * of the unread bytes without `Upgrade` (and the fields its `Connection`
 * names), and the server parses the connection afresh. Node has already
 * checked every byte of that head.
 */
export function answerAsPlainRequest(server: http.Server, req: IncomingMessage, socket: Duplex, early: Buffer): void {
  const drop = hopByHopFields(req.rawHeaders);
  drop.delete('connection');
  drop.delete('transfer-encoding');
  drop.delete('te');
  drop.delete('trailer');
  drop.delete('keep-alive');
  const pairs = withoutHeaders(req.rawHeaders, drop);
  const connection = getHeader(pairs, 'connection');
  const kept = connection
    ?.split(',')
    .map((t) => t.trim())
    .filter((t) => t && !drop.has(t.toLowerCase()));
  const fields = withoutHeaders(pairs, new Set(['connection']));
  if (kept && kept.length > 0) fields.push('Connection', kept.join(', '));
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  if (early.length > 0) socket.unshift(early);
  socket.unshift(Buffer.from(`${head}\r\n`, 'latin1'));
  server.emit(server instanceof https.Server ? 'secureConnection' : 'connection', socket);
}
