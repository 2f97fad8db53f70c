/**
 * Agent egress: provider → Client Tracker messages (isInRequest,
 * pushResource, pushResourceRemove) from the intranet, through the relay.
 *
 * The provider's "Client Tracker RPC URL" is set to the agent, one base per
 * tunnel: `http://<egress.listen>/t/<tunnel>/`. The provider POSTs
 * `is_in_request`, `add_resource` or `remove_resource` under it; the agent
 * checks the caller (egress.allowFrom), the tunnel (agent.yaml), the size
 * (egress.maxBody) and the XML (schema, no DOCTYPE), then sends the message
 * unchanged on a new exchange of kind `egress` to the relay, which POSTs it
 * to the tunnel's Client Tracker RPC URL. Client Tracker's answer comes back
 * to the provider as it is; a failure comes back as data and is worded here.
 *
 * Every answer the agent makes itself is `<response><error>…</error></response>`
 * with `X-Ctbridge-Error: <code>`. A message is sent at most once.
 *
 * Imported dynamically by agent/index.ts, only when `egress` is configured:
 * the schema validator is libxml2-wasm.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import type { AgentConfig, AgentEgressConfig } from '../../src/config/index.js';
import { formatHostPort } from '../../src/config/units.js';
import { CtbridgeError, type ErrorCode } from '../../src/errors.js';
import { peerAddress } from '../../src/http/client-address.js';
import { declaredLength, firstValue, getHeader } from '../../src/http/headers.js';
import type { Logger } from '../../src/log.js';
import type { MuxSession } from '../../src/mux/session.js';
import { REQUEST_ID_HEADER } from '../../src/protocol.js';
import { nextRequestId } from '../../src/request-id.js';
import { formatXmlIssues } from '../../src/xml/kinds.js';
import { listenOrExplain } from '../../src/listen.js';
import { forwardMessage, type ForwardOutcome } from './egress-forward.js';
import { isEgressMessageName, type EgressMessageName } from '../../src/xml/egress-messages.js';
import { checkMessage, prepareSchemas } from './egress-message.js';
import { egressText, messageLabel, writeXmlError } from './egress-text.js';
import { issueText } from '../../src/inspect/redact-entry.js';
import type { AgentEgressRecord } from '../inspect.js';
import { IdleWaiters } from '../../src/idle-waiters.js';

/** How long the relay gets to answer a message (it gives Client Tracker 30 s). */
export const EGRESS_TIMEOUT_MS = 60_000;
/** Schema problems listed in one error answer. */
const MAX_ISSUES = 10;
const MESSAGE_PATH = /^\/t\/([^/]+)\/+([^/]*)\/?$/;

export interface EgressOptions {
  /** ms the relay gets to answer a message (default EGRESS_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Keeps each message for the admin listener's inspector (agent/inspect.ts). */
  inspect?: (record: AgentEgressRecord) => void;
}

/** The current session to the relay, if the relay has accepted the agent and the connection is up. */
export type SessionSource = () => MuxSession | undefined;

/** What one message's log line says (never the key; the login only hashed). */
interface Entry {
  start: number;
  remoteAddress: string;
  tunnel?: string;
  message?: EgressMessageName;
  login?: string;
  ctid?: string;
  bytesIn: number;
  requestId?: string;
  /** For the inspector: the provider's request and the answer it got. */
  headers: readonly string[];
  body?: Buffer;
  validation?: 'valid' | 'invalid';
  firstError?: string;
  answer?: { headers: readonly string[]; body: Buffer };
}

const MESSAGE_NAMES: Record<EgressMessageName, string> = { is_in_request: 'isInRequest', add_resource: 'pushResource', remove_resource: 'pushResourceRemove' };

function shorten(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

export class EgressServer {
  private readonly server: http.Server;
  private readonly file: string;
  private readonly tunnels: readonly string[];
  private readonly timeoutMs: number;
  private active = 0;
  private readonly idleWaiters = new IdleWaiters();
  private shuttingDown = false;
  private closed: Promise<void> | undefined;
  private baseUrl = '';

  private constructor(
    private readonly config: AgentConfig,
    private readonly egress: AgentEgressConfig,
    private readonly log: Logger,
    private readonly session: SessionSource,
    private readonly options: EgressOptions,
  ) {
    this.file = basename(config.file);
    this.tunnels = Object.keys(config.tunnels);
    this.timeoutMs = options.timeoutMs ?? EGRESS_TIMEOUT_MS;
    this.server = http.createServer({
      maxHeaderSize: config.limits.maxHeaderSize,
      requestTimeout: 60_000,
      headersTimeout: 30_000,
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code !== 'ECONNRESET') log.info({ code: err.code, reason: err.message }, 'egress: malformed request from provider');
      if (!socket.writable) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /**
   * Compiles the schemas, binds egress.listen and logs `egress listening`
   * with the URL to give providers for each tunnel. Throws CtbridgeError
   * (CTB_CONFIG_INVALID) if the address cannot be bound.
   */
  static async start(config: AgentConfig, log: Logger, session: SessionSource, options: EgressOptions = {}): Promise<EgressServer> {
    const egress = config.egress;
    if (!egress) throw new CtbridgeError('CTB_CONFIG_INVALID', `${basename(config.file)}: egress is not configured`);
    prepareSchemas();
    const server = new EgressServer(config, egress, log, session, options);
    await server.listen();
    return server;
  }

  /** Where the listener is bound. */
  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** The Client Tracker RPC URL to set in a provider for `tunnel`. */
  urlFor(tunnel: string): string {
    return `${this.baseUrl}/t/${encodeURIComponent(tunnel)}/`;
  }

  /** Messages being handled right now. */
  get inFlight(): number {
    return this.active;
  }

  /** Stop taking messages: the listener closes, idle connections end, new requests on open ones get 503. */
  beginShutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.closed = new Promise((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
  }

  /** Resolves true once no message is in flight, false after `ms`. */
  whenIdle(ms: number): Promise<boolean> {
    return this.idleWaiters.wait(this.active === 0, ms);
  }

  /** Closes the listener and every connection, in flight or not. */
  async close(): Promise<void> {
    this.beginShutdown();
    this.server.closeAllConnections();
    await this.closed;
  }

  private async listen(): Promise<void> {
    const { host } = this.egress.listen;
    await listenOrExplain(this.server, this.egress.listen, { file: this.file, key: 'egress.listen' });
    const bound = this.address;
    const unspecified = host === '0.0.0.0' || host === '::';
    this.baseUrl = `http://${formatHostPort({ host: unspecified ? hostname() : host, port: bound.port })}`;
    const urls = Object.fromEntries(this.tunnels.map((t) => [t, this.urlFor(t)]));
    this.log.info({
      listen: formatHostPort(bound),
      allowFrom: this.egress.allowFrom.toJSON(),
      maxBody: this.egress.maxBody,
      urls,
      hint: 'set each provider\'s Client Tracker RPC URL to its tunnel\'s URL',
    }, 'egress listening');
  }

  // ---- requests ----

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const entry: Entry = { start: performance.now(), remoteAddress: peerAddress(req.socket), bytesIn: 0, headers: req.rawHeaders };
    this.active++;
    res.once('close', () => {
      this.active--;
      if (this.active === 0) this.idleWaiters.wake();
    });
    const refuse = (code: ErrorCode, text: string, fields: Record<string, unknown> = {}, headers: Record<string, string> = {}): void => {
      // The rest of a refused body is read and dropped, so the provider sees the answer rather than a reset.
      req.resume();
      const status = writeXmlError(res, code, text, headers);
      this.logEntry(entry, { status, code, ...fields }, true);
    };

    if (!this.egress.allowFrom.contains(entry.remoteAddress)) {
      refuse('CTB_SOURCE_NOT_ALLOWED', egressText.sourceNotAllowed(entry.remoteAddress || 'an unknown address', this.file), {}, { connection: 'close' });
      return;
    }
    if (this.shuttingDown) {
      refuse('CTB_SHUTTING_DOWN', egressText.shuttingDown('the message'), {}, { connection: 'close' });
      return;
    }

    let raw = req.url ?? '/';
    if (/^https?:\/\//i.test(raw)) {
      try {
        raw = new URL(raw).pathname;
      } catch {
        // fall through: the pattern below refuses it
      }
    }
    const path = raw.split('?')[0] ?? '';
    const m = MESSAGE_PATH.exec(path);
    let tunnel: string | undefined;
    try {
      tunnel = m ? decodeURIComponent(m[1] ?? '') : undefined;
    } catch {
      tunnel = undefined;
    }
    if (!m || tunnel === undefined) {
      const example = this.urlFor(this.tunnels[0] ?? 'tunnel');
      refuse('CTB_PATH_NOT_ALLOWED', egressText.badPath(shorten(path), example), { path: shorten(path) });
      return;
    }
    const name = m[2] ?? '';
    if (!Object.hasOwn(this.config.tunnels, tunnel)) {
      refuse('CTB_TUNNEL_UNKNOWN', egressText.unknownTunnel(shorten(tunnel, 64), this.file, this.tunnels), { tunnel: shorten(tunnel, 64) });
      return;
    }
    entry.tunnel = tunnel;
    if (!isEgressMessageName(name)) {
      refuse('CTB_PATH_NOT_ALLOWED', egressText.unknownMessage(tunnel, shorten(name, 40)), { path: shorten(path) });
      return;
    }
    entry.message = name;
    const label = messageLabel(name, tunnel);
    if (req.method !== 'POST') {
      refuse('CTB_BAD_REQUEST', egressText.notPost(label, shorten(req.method ?? '', 10)), { method: shorten(req.method ?? '', 10) }, { allow: 'POST' });
      return;
    }
    const encoding = firstValue(req.headers['content-encoding'])?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      refuse('CTB_BAD_REQUEST', egressText.encoded(label, shorten(encoding, 20)), { contentEncoding: shorten(encoding, 20) });
      return;
    }

    const limit = this.egress.maxBody;
    const tooLarge = (): void => {
      refuse('CTB_BODY_TOO_LARGE', egressText.tooLarge(label, this.file, limit), { limit }, { connection: 'close' });
    };
    const declared = declaredLength(firstValue(req.headers['content-length']));
    if (declared !== undefined && declared > limit) {
      entry.bytesIn = declared;
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      entry.bytesIn += chunk.length;
      if (entry.bytesIn > limit) {
        over = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) void this.handleMessage(req, res, entry, name, tunnel, Buffer.concat(chunks, entry.bytesIn));
    });
    req.on('error', () => res.destroy());
  }

  private async handleMessage(req: IncomingMessage, res: ServerResponse, entry: Entry, name: EgressMessageName, tunnel: string, body: Buffer): Promise<void> {
    const label = messageLabel(name, tunnel);
    const check = checkMessage(name, body);
    entry.body = body;
    entry.validation = check.ok ? 'valid' : 'invalid';
    if (!check.ok && check.issues[0]) entry.firstError = issueText(check.issues[0]);
    if (!check.ok) {
      const shown = check.issues.slice(0, MAX_ISSUES);
      let issues = formatXmlIssues(shown);
      if (check.issues.length > shown.length) issues += `\n(${check.issues.length - shown.length} more problems not shown)`;
      const status = writeXmlError(res, 'CTB_XML_INVALID', egressText.invalid(label, issues));
      // Only where the problems are: their text may quote values from the message.
      const where = shown.map((i) => `line ${i.line}${i.element ? ` <${i.element}>` : ''}`);
      this.logEntry(entry, { status, code: 'CTB_XML_INVALID', problems: check.issues.length, where }, true);
      return;
    }
    if (check.login !== undefined) entry.login = check.login;
    if (check.ctid !== undefined) entry.ctid = check.ctid;

    const session = this.session();
    if (!session || !session.isOpen) {
      const status = writeXmlError(res, 'CTB_RELAY_UNREACHABLE', egressText.notConnected(label));
      this.logEntry(entry, { status, code: 'CTB_RELAY_UNREACHABLE' }, true);
      return;
    }
    const requestId = nextRequestId('e');
    entry.requestId = requestId;
    const outcome = await forwardMessage(session, { tunnel, message: name, body, requestId, timeoutMs: this.timeoutMs });
    if (res.destroyed) {
      // The provider went away meanwhile; the message was still handed over.
      this.logEntry(entry, outcome.ok ? { status: outcome.status, providerGone: true } : { code: outcome.error.code, reason: outcome.error.message, providerGone: true }, !outcome.ok);
      return;
    }
    if (!outcome.ok) {
      this.answerFailure(res, entry, label, outcome);
      return;
    }
    const headers: Record<string, string | number> = { 'content-length': outcome.body.length, [REQUEST_ID_HEADER]: requestId };
    const contentType = getHeader(outcome.headers, 'content-type');
    if (contentType !== undefined) headers['content-type'] = contentType;
    res.writeHead(outcome.status, headers);
    res.end(outcome.body);
    entry.answer = { headers: outcome.headers, body: outcome.body };
    this.logEntry(entry, { status: outcome.status, bytesOut: outcome.body.length }, false);
  }

  private answerFailure(res: ServerResponse, entry: Entry, label: string, outcome: Extract<ForwardOutcome, { ok: false }>): void {
    const { error, sent } = outcome;
    const reason = shorten(error.message, 200);
    let text: string;
    if (error.code === 'CTB_CT_UNREACHABLE') {
      text = egressText.ctUnreachable(label, error.params.ctOrigin, error.params.problem);
    } else if (sent === false) {
      text = error.code === 'CTB_RELAY_UNREACHABLE' ? egressText.notConnected(label) : egressText.refusedByRelay(label, reason);
    } else if (error.code === 'CTB_REQUEST_TIMEOUT') {
      text = egressText.timedOut(label, Math.round(this.timeoutMs / 100) / 10);
    } else if (error.code === 'CTB_RELAY_UNREACHABLE' || error.code === 'CTB_AGENT_DISCONNECTED') {
      text = egressText.linkFailed(label, reason);
    } else {
      text = egressText.badAnswer(label, reason);
    }
    const status = writeXmlError(res, error.code, text);
    this.logEntry(entry, { status, code: error.code, reason, sent: sent === false ? 'no' : 'unknown' }, true);
  }

  /** The one `egress` line per message. */
  private logEntry(entry: Entry, fields: Record<string, unknown>, warn: boolean): void {
    const line = {
      ...(entry.tunnel !== undefined ? { tunnel: entry.tunnel } : {}),
      ...(entry.message !== undefined ? { message: entry.message } : {}),
      remoteAddress: entry.remoteAddress,
      ...(entry.login !== undefined ? { login: entry.login } : {}),
      ...(entry.ctid !== undefined ? { ctid: entry.ctid } : {}),
      ...(entry.requestId !== undefined ? { requestId: entry.requestId } : {}),
      bytesIn: entry.bytesIn,
      ...fields,
      durationMs: Math.round((performance.now() - entry.start) * 10) / 10,
    };
    if (warn) this.log.warn(line, 'egress');
    else this.log.info(line, 'egress');
    this.options.inspect?.({
      requestId: entry.requestId, tunnel: entry.tunnel, message: entry.message ? MESSAGE_NAMES[entry.message] : 'not a Client Tracker message',
      start: entry.start, status: typeof fields.status === 'number' ? fields.status : 0,
      ...(typeof fields.code === 'string' ? { code: fields.code } : {}),
      validation: entry.validation ?? 'not checked', ...(entry.firstError ? { firstError: entry.firstError } : {}),
      ...(entry.ctid ? { ctid: entry.ctid } : {}),
      headers: entry.headers, body: entry.body, bytesIn: entry.bytesIn, ...(entry.answer ? { answer: entry.answer } : {}),
    });
  }
}

/** Starts the egress listener (see EgressServer.start). */
export function startEgress(config: AgentConfig, log: Logger, session: SessionSource, options: EgressOptions = {}): Promise<EgressServer> {
  return EgressServer.start(config, log, session, options);
}
