/**
 * A multiplexed session over one WebSocket: many concurrent exchanges and a
 * control channel. Both ends run the same class (frp style: client and
 * server mirror each other); they differ only in the parity of the exchange
 * ids they open (relay odd, agent even).
 *
 * Frames produced during one event-loop turn go out as one WebSocket
 * message, and the connection's send buffer is bounded (send-queue.ts).
 *
 * Everything the peer sends is checked (docs/wire-protocol.md, "Hostile
 * peers"): a frame that cannot be decoded closes the connection with 1002
 * and a reason; a malformed head, a flow-control violation or a frame out of
 * order resets only its exchange. Either way the owner hears of it through
 * 'problem' (to log) and no exception escapes to the process.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { CtbridgeError, type ErrorCode } from '../errors.js';
import { untrusted } from '../log-text.js';
import { ChurnMap } from '../churn-map.js';
import { IdleWaiters } from '../idle-waiters.js';
import { CloseCode } from '../protocol.js';
import { Exchange, type ExchangeSink } from './exchange.js';
import { ExchangeIds } from './exchange-ids.js';
import {
  decodeFrames,
  encodeHeader,
  encodeJson,
  encodeWindow,
  FLAG_END,
  FrameError,
  FrameType,
  parseJsonPayload,
  parseWindowPayload,
  typeName,
  type Frame,
} from './frame.js';
import { Heartbeat, type HeartbeatTiming } from './heartbeat.js';
import { SendQueue } from './send-queue.js';
import { checkRequestHead, checkResponseHead, type RequestHead, type ResponseHead } from './heads.js';
import { fromWire, type WireError } from './wire-error.js';

export interface SessionOptions {
  /**
   * Which ids this side opens (relay: odd, agent: even). A node link runs
   * its dialer as 'relay' and its listener as 'agent', so set `peerName`.
   */
  role: 'relay' | 'agent';
  /** Who is on the other end, for error wording ("the agent", "relay node b"); default from `role`. */
  peerName?: string;
  /** Per-exchange flow-control window in bytes (what we let the peer send unacknowledged). */
  window: number;
  /** Exchanges the peer may have open towards us at once; more are reset with CTB_AGENT_BUSY. */
  maxIncoming: number;
  /** Liveness checks (heartbeat.ts); `interval` 0 turns them off. */
  heartbeat: HeartbeatTiming;
}


export interface MuxSessionEvents {
  /** The peer opened an exchange (its head is checked). */
  exchange: [exchange: Exchange];
  /** A control message: a JSON object with a string `type` (its fields are the owner's to check; anything else closes the connection). */
  control: [message: Record<string, unknown>];
  /** The peer misbehaved; the session reset an exchange or is closing. For the owner's log. */
  problem: [message: string];
  close: [code: number, reason: string];
}

export class MuxSession extends EventEmitter<MuxSessionEvents> implements ExchangeSink {
  readonly options: SessionOptions;
  /** Body bytes (DATA payloads) received from and sent to the peer. */
  bytesIn = 0;
  bytesOut = 0;
  private readonly ws: WebSocket;
  /** Not a Map: see src/churn-map.ts (a Map kept every request alive into the old generation after a burst). */
  private readonly exchanges = new ChurnMap<number, Exchange>();
  /** Which ids we open, which the peer may open, which we reset lately (exchange-ids.ts). */
  private readonly ids: ExchangeIds;
  private incoming = 0;
  /** Outgoing frames, batched per event-loop turn, and the send-buffer bound (send-queue.ts). */
  private readonly out: SendQueue;
  /** whenIdle() callers, woken when the last exchange ends or the session closes. */
  private readonly idleWaiters = new IdleWaiters();
  private readonly heartbeat: Heartbeat;
  /** Why the heartbeat declared the link dead: the close reason the owner hears. */
  private deadReason: string | undefined;
  private closed = false;
  private closing = false;
  /** The peer's receive window: our initial send credit per exchange. Set from the handshake. */
  private peerWindow: number;
  private readonly disconnectCode: ErrorCode;

  constructor(ws: WebSocket, options: SessionOptions) {
    super();
    this.ws = ws;
    this.out = new SendQueue(ws);
    this.options = options;
    this.ids = new ExchangeIds(options.role);
    this.peerWindow = options.window;
    this.disconnectCode = options.role === 'relay' ? 'CTB_AGENT_DISCONNECTED' : 'CTB_RELAY_UNREACHABLE';
    ws.binaryType = 'nodebuffer';
    ws.on('message', this.onMessage);
    ws.on('pong', this.onAlive);
    ws.on('ping', this.onAlive);
    ws.on('close', this.onClose);
    ws.on('error', noop); // 'close' follows every error and carries the outcome
    // The agent side pings while idle; the relay side answers and watches (heartbeat.ts).
    this.heartbeat = new Heartbeat(options.role === 'agent', options.heartbeat, {
      ping: () => this.ws.ping(),
      dead: (reason) => {
        // Closes with 1006 and this reason: the owner logs it, the open exchanges fail with the disconnect code.
        this.deadReason = `link dead: ${reason}`;
        this.terminate();
      },
      busy: () => this.exchanges.size > 0,
      backlogged: () => this.out.backlogged,
    });
  }

  /** Exchanges open in both directions. */
  get exchangeCount(): number {
    return this.exchanges.size;
  }

  /** Exchanges we opened that are still open (the relay's load figure for an agent). */
  get outgoingCount(): number {
    return this.exchanges.size - this.incoming;
  }

  get isOpen(): boolean {
    return !this.closed && !this.closing;
  }

  /**
   * Adopts the window the peer announced in the handshake (hello / ready),
   * so relay and agent may run with different `streamWindow` settings.
   */
  setPeerWindow(bytes: unknown): void {
    if (typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 16 * 1024 && bytes <= 16 * 1024 * 1024) this.peerWindow = bytes;
  }

  /**
   * Resolves true once no exchange is open (at once if none is, or when
   * the session closes), false after `ms`. Event-driven: no polling.
   */
  whenIdle(ms: number): Promise<boolean> {
    return this.idleWaiters.wait(this.exchanges.size === 0 || this.closed, ms);
  }

  /** Opens an exchange: the OPEN frame carries `head`; `end` when the request has no body. */
  request(head: RequestHead, end: boolean): Exchange {
    if (!this.isOpen) throw new CtbridgeError(this.disconnectCode, 'the tunnel connection is closed');
    const id = this.ids.allocate(this.exchanges);
    const exchange = new Exchange(this, id, head, false, { window: this.options.window, peerWindow: this.peerWindow, localEnded: end });
    this.exchanges.set(id, exchange);
    this.heartbeat.wake();
    this.out.enqueue(encodeJson(FrameType.OPEN, end ? FLAG_END : 0, id, head));
    return exchange;
  }

  sendControl<T extends { type: string }>(message: T): void {
    if (!this.isOpen) return;
    this.out.enqueue(encodeJson(FrameType.CONTROL, 0, 0, message));
  }

  /** Sends what is queued, then closes the WebSocket with a code and reason. */
  close(code: number, reason: string): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.out.flush();
    this.ws.close(code, truncateReason(reason));
  }

  /** Drops the connection at once (dead peer). */
  terminate(): void {
    this.ws.terminate();
  }

  // ---- ExchangeSink ----

  get writable(): boolean {
    return this.out.writable;
  }

  waitWritable(exchange: Exchange): void {
    this.out.waitWritable(exchange);
  }

  sendReply(id: number, head: ResponseHead, end: boolean): void {
    this.out.enqueue(encodeJson(FrameType.REPLY, end ? FLAG_END : 0, id, head));
  }

  sendData(id: number, chunk: Buffer, end: boolean): void {
    this.bytesOut += chunk.length;
    const header = encodeHeader(FrameType.DATA, end ? FLAG_END : 0, id, chunk.length);
    this.out.enqueue(chunk.length === 0 ? [header] : [header, chunk]);
  }

  sendReset(id: number, error: WireError): void {
    this.ids.noteReset(id);
    this.out.enqueue(encodeJson(FrameType.RESET, 0, id, error));
  }

  sendWindow(id: number, increment: number): void {
    this.out.enqueue([encodeWindow(id, increment)]);
  }

  release(exchange: Exchange): void {
    if (this.exchanges.get(exchange.id) === exchange) {
      this.exchanges.delete(exchange.id);
      if (exchange.incoming) this.incoming--;
      if (this.exchanges.size === 0) this.idleWaiters.wake();
    }
    this.out.release(exchange);
  }

  problem(exchange: Exchange, message: string): void {
    this.emit('problem', `exchange ${exchange.id} (${exchange.head.kind}, tunnel ${exchange.head.tunnel}): ${message}`);
  }

  // ---- input ----

  private readonly onMessage = (data: Buffer, isBinary: boolean): void => {
    this.heartbeat.seen(Date.now());
    if (this.closed) return;
    if (!isBinary) {
      this.protocolError('received a text WebSocket message; ctbridge sends binary frames only');
      return;
    }
    try {
      decodeFrames(data, this.onFrame);
    } catch (err) {
      if (err instanceof FrameError) this.protocolError(err.message);
      else this.internalError(err);
    }
  };

  private readonly onFrame = (frame: Frame): void => {
    if (this.closed || this.closing) return;
    switch (frame.type) {
      case FrameType.CONTROL:
        this.onControl(frame);
        return;
      case FrameType.OPEN:
        this.onOpen(frame);
        return;
    }
    const exchange = this.exchanges.get(frame.id);
    if (!exchange) {
      this.onUnknownExchange(frame);
      return;
    }
    switch (frame.type) {
      case FrameType.REPLY: {
        const head = checkResponseHead(parseJsonPayload(frame));
        if (head.ok) exchange.onResponse(head.value, frame.flags === FLAG_END);
        else exchange.protocolError(`malformed response head: ${head.problem}`);
        break;
      }
      case FrameType.DATA:
        this.bytesIn += frame.payload.length;
        exchange.onData(frame.payload, frame.shared, frame.flags === FLAG_END);
        break;
      case FrameType.RESET:
        exchange.onReset(fromWire(parseJsonPayload(frame), this.peerName));
        break;
      case FrameType.WINDOW:
        exchange.onWindow(parseWindowPayload(frame));
        break;
    }
  };

  private get peerName(): string {
    return this.options.peerName ?? (this.options.role === 'relay' ? 'the agent' : 'the relay');
  }

  /**
   * A frame for an exchange we do not have. Frames the peer sent before it
   * heard of our RESET are normal (they cross on the wire) and dropped, and
   * so are WINDOW and RESET frames for an exchange that ended both ways.
   * Body or head for an exchange whose peer side already ended is the
   * peer's error (reset and reported); any frame for an id that was never
   * opened is a protocol error that closes the connection.
   */
  private onUnknownExchange(frame: Frame): void {
    if (this.ids.neverOpened(frame.id)) throw new FrameError(`${typeName(frame.type)} frame for exchange ${frame.id}, which was never opened`);
    if (this.ids.wasReset(frame.id) || (frame.type !== FrameType.DATA && frame.type !== FrameType.REPLY)) return;
    const message = `${typeName(frame.type)} after END on exchange ${frame.id}`;
    this.emit('problem', `exchange ${frame.id}: ${message}`);
    this.sendReset(frame.id, { code: 'CTB_PROTOCOL', message });
  }

  private onOpen(frame: Frame): void {
    const id = frame.id;
    if (!this.ids.acceptPeerOpen(id)) {
      throw new FrameError(`the peer opened exchange ${id}, which is not a new id of its parity`);
    }
    const head = checkRequestHead(parseJsonPayload(frame));
    if (!head.ok) {
      this.emit('problem', `exchange ${id}: malformed request head: ${head.problem}`);
      this.sendReset(id, { code: 'CTB_PROTOCOL', message: `malformed request head: ${head.problem}` });
      return;
    }
    if (this.incoming >= this.options.maxIncoming) {
      this.sendReset(id, { code: 'CTB_AGENT_BUSY', message: `too many concurrent exchanges (limit ${this.options.maxIncoming})` });
      return;
    }
    const exchange = new Exchange(this, id, head.value, true, {
      window: this.options.window,
      peerWindow: this.peerWindow,
      remoteEnded: frame.flags === FLAG_END,
    });
    this.exchanges.set(id, exchange);
    this.incoming++;
    this.heartbeat.wake();
    if (this.listenerCount('exchange') === 0) {
      exchange.reset(new CtbridgeError('CTB_SHUTTING_DOWN', 'not accepting exchanges'));
      return;
    }
    this.emit('exchange', exchange);
  }

  private onControl(frame: Frame): void {
    const message = parseJsonPayload(frame);
    if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as { type?: unknown }).type !== 'string') {
      this.protocolError('a control message that is not a JSON object with a type');
      return;
    }
    this.emit('control', message as Record<string, unknown>);
  }

  private protocolError(message: string): void {
    this.emit('problem', `protocol error: ${message}`);
    this.close(CloseCode.PROTOCOL_ERROR, `protocol error: ${message}`);
  }

  /** A bug of ours while handling a frame: close this connection only, never the process. */
  private internalError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.emit('problem', `internal error while handling a frame: ${message}`);
    this.close(CloseCode.INTERNAL_ERROR, 'internal error while handling a frame');
  }

  // ---- liveness ----

  private readonly onAlive = (): void => {
    this.heartbeat.seen(Date.now());
  };

  private readonly onClose = (code: number, reasonBuf: Buffer): void => {
    if (this.closed) return;
    this.closed = true;
    this.heartbeat.stop();
    this.out.close();
    const reason = this.deadReason ?? reasonBuf.toString('utf8');
    const err = new CtbridgeError(this.disconnectCode, `the ${this.options.peerName ? `connection to ${this.options.peerName}` : 'tunnel connection'} closed (code ${code}${reason ? `: ${untrusted(reason)}` : ''}) during the exchange`);
    for (const exchange of this.exchanges.values()) exchange.abort(err);
    this.exchanges.clear();
    this.incoming = 0;
    this.idleWaiters.wake();
    this.emit('close', code, reason);
  };
}

function noop(): void {}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  const buf = Buffer.from(reason, 'utf8');
  if (buf.length <= 123) return reason;
  let end = 120;
  while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString('utf8')}...`;
}
