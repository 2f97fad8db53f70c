/**
 * One dial of the agent's WebSocket to the relay: the URL, the token, the
 * subprotocol, the way there (forward-proxy.ts: direct, a proxy or a PAC
 * file; TLS with the configured trust), bounded as a whole by
 * `timeouts.connect`. It ends in an open WebSocket or in one problem
 * (relay-errors.ts) for the connection to log: a refused upgrade is
 * described from its status and, from a ctbridge relay, the reason in its
 * JSON error body (relay-error-body.ts).
 */
import type { Agent, IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import { SOFTWARE_VERSION, SUBPROTOCOL } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import type { RelayDial } from './forward-proxy.js';
import { readErrorReason, withRefusal } from './relay-error-body.js';
import { describeConnectError, describeHttpStatus, timeoutProblem, type RelayContext, type RelayProblem } from './relay-errors.js';

/** Largest WebSocket message accepted from the relay. */
export const MAX_PAYLOAD = 16 * 1024 * 1024;

export interface DialOutcome {
  /** The upgrade succeeded: the WebSocket is open (its own 'close' now belongs to the session). */
  open(ws: WebSocket): void;
  /** The dial failed (or was abandoned: `ws.terminate()` before it opened). */
  failed(problem: RelayProblem): void;
  /** The relay refused the upgrade: its answer (a 503 carries Retry-After). */
  refused?(res: IncomingMessage): void;
}

/** Dials the relay once; the returned WebSocket is still connecting. `attempt` and `planned` are for the log line. */
export function dialRelay(config: AgentConfig, dial: RelayDial, ctx: RelayContext, log: Logger, attempt: number, planned: boolean, outcome: DialOutcome): WebSocket {
  // A planned dial (a recycle: it follows a deliberate close) is routine: debug.
  log[planned ? 'debug' : 'info']({ relay: redactUrl(config.relay), via: dial.proxy ? dial.proxy.display : dial.pac ? `PAC file ${dial.pac}` : 'direct', attempt }, 'connecting to relay');
  const ws = relayWebSocket(config, dial.agent, dial.ca);
  let problem: RelayProblem | undefined;
  let opened = false;
  // handshakeTimeout starts only once a socket exists; through a proxy that is after CONNECT. Bound the whole dial.
  const dialTimer = setTimeout(() => {
    problem ??= timeoutProblem(ctx);
    ws.terminate();
  }, config.timeouts.connect);
  ws.on('unexpected-response', (_req, res) => {
    // A proxy's own refusal of CONNECT arrives as an error (ProxyRefusal); this answer is from the relay's side.
    const p = describeHttpStatus(res, ctx);
    problem ??= p;
    outcome.refused?.(res);
    // A ctbridge relay says why in a JSON error body; read a little of it, then give up on this attempt.
    readErrorReason(res, (refusal) => {
      withRefusal(p, refusal);
      ws.terminate();
    });
  });
  ws.on('error', (err) => {
    if (!opened) problem ??= describeConnectError(err, ctx);
  });
  ws.once('open', () => {
    opened = true;
    clearTimeout(dialTimer);
    outcome.open(ws);
  });
  ws.once('close', () => {
    clearTimeout(dialTimer);
    if (opened) return; // the session's 'close' handles it
    outcome.failed(problem ?? describeConnectError(new Error('connection closed during the handshake'), ctx));
  });
  return ws;
}

/**
 * The WebSocket to the relay as every dial opens it (the agent's, and
 * `agent verify --connect`'s): the subprotocol, the token, no redirects, no
 * compression, bounded by `timeouts.connect`; through `agent` (the route to
 * the relay: forward-proxy.ts) and trusting `ca`.
 */
export function relayWebSocket(config: AgentConfig, agent: Agent | undefined, ca: string[] | undefined): WebSocket {
  return new WebSocket(config.relay, [SUBPROTOCOL], {
    perMessageDeflate: false,
    // A zero mask: ws then skips masking here and unmasking on the relay. Masking
    // protects browsers' peers from cache poisoning; this client is not a browser.
    generateMask: leaveMaskZero,
    maxPayload: MAX_PAYLOAD,
    handshakeTimeout: config.timeouts.connect,
    followRedirects: false,
    headers: { authorization: `Bearer ${config.token}`, 'user-agent': SOFTWARE_VERSION },
    ...(agent ? { agent } : {}),
    ...(ca ? { ca } : {}),
  });
}

function leaveMaskZero(): void {}
