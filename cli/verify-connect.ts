/**
 * `ctbridge agent verify --connect`: what IT runs when "it doesn't connect".
 * From the agent's host, without starting the agent: resolve the proxy for
 * the relay URL (environment, PAC file, WinHTTP), connect, authenticate to
 * the proxy, complete TLS with the configured trust, and do the WebSocket
 * handshake with the token. Prints each step with ✓/✗ and, at the first ✗,
 * what to do. Exit code 0 when every step passed.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { createRelayDial, describeProxy, type RelayDial } from '../agent/forward-proxy.js';
import { ProxyRefusal } from '../agent/proxy-tunnel.js';
import { ProxyProtocolError } from '../agent/proxy-response.js';
import { describeClose, describeConnectError, describeHttpStatus, type RelayContext, type RelayProblem } from '../agent/relay-errors.js';
import { relayWebSocket } from '../agent/relay-dial.js';
import { helloMessage } from '../agent/relay-messages.js';
import { relayContext } from '../agent/relay-problem.js';
import { whenConnected } from '../agent/socket-connect.js';
import { relayTrust } from '../agent/trust.js';
import { openRoute, relayTls, type Hop } from '../agent/tunnel-agent.js';
import { readErrorReason, withRefusal } from '../agent/relay-error-body.js';
import type { AgentConfig } from '../src/config/index.js';
import { formatDuration, loadAgentConfig } from '../src/config/index.js';
import { encodeJson, FrameType } from '../src/mux/frame.js';
import { CloseCode, SUBPROTOCOL, type HelloMessage } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';

type Write = (line: string) => void;

class StepFailed extends Error {}

/** One socket, handed to ws for its handshake. */
class OneSocketAgent extends http.Agent {
  constructor(private readonly socket: Duplex, secure: boolean) {
    super({ keepAlive: false });
    (this as unknown as { protocol: string }).protocol = secure ? 'https:' : 'http:';
  }
  override createConnection(): Duplex {
    return this.socket;
  }
}

const TIMED_OUT = Symbol('timed out');

/** `promise`, or `onTimeout()` (which fails the step) when it has not settled within `ms`. */
async function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => never): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (err) {
    if (err === TIMED_OUT) onTimeout();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The route's AbortSignal.timeout fired (a DOMException named TimeoutError). */
const isTimeout = (err: unknown): boolean => (err as { name?: unknown })?.name === 'TimeoutError';

/** A step that got no answer in time, naming what it waited for. */
function waitedFor(what: string, ms: number, ctx: RelayContext): RelayProblem {
  return {
    level: 'error',
    msg: `no answer within ${formatDuration(ms)}`,
    fields: {
      code: 'CTB_RELAY_UNREACHABLE',
      detail: `waited ${formatDuration(ms)} (timeouts.connect) for ${what}`,
      hint: `check the network path to the relay (${ctx.dial.proxy ? 'the forward proxy, ' : ''}firewall, a TLS-inspecting device), that relay: in agent.yaml points at the ctbridge relay, or raise timeouts.connect in agent.yaml`,
    },
  };
}

export async function verifyConnect(file: string, write: Write = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  let config: AgentConfig;
  try {
    config = loadAgentConfig(file);
  } catch (err) {
    write(`✗ config      ${(err as Error).message}`);
    return 1;
  }
  write(`✓ config      ${file}`);
  let ok = true;
  for (const relay of config.relays) ok = (await verifyRelay({ ...config, relay }, write)) && ok;
  return ok ? 0 : 1;
}

async function verifyRelay(config: AgentConfig, write: Write): Promise<boolean> {
  const trust = relayTrust(config);
  const dial: RelayDial = createRelayDial(config, process.env, trust);
  const ctx = relayContext(config, config.relay, dial);
  const relayUrl = new URL(config.relay);
  const secure = relayUrl.protocol === 'wss:';
  write(`  relay       ${redactUrl(config.relay)}`);
  const fail = (step: string, p: RelayProblem): never => {
    write(`✗ ${step.padEnd(11)} ${p.msg}${p.fields.code ? ` (${p.fields.code})` : ''}`);
    if (p.fields.detail) write(`  ${''.padEnd(11)} ${String(p.fields.detail)}`);
    // The relay's own sentence, and the request id under which its log line says why.
    if (p.fields.reason) write(`  ${''.padEnd(11)} relay says: ${String(p.fields.reason)}`);
    if (p.fields.requestId && !String(p.fields.reason ?? '').includes(String(p.fields.requestId))) write(`  ${''.padEnd(11)} request id: ${String(p.fields.requestId)}`);
    for (const k of ['proxyOffers', 'answeredBy', 'via'] as const) if (p.fields[k]) write(`  ${''.padEnd(11)} ${k}: ${String(p.fields[k])}`);
    if (p.fields.hint) write(`  what to do: ${String(p.fields.hint)}`);
    throw new StepFailed(step);
  };
  try {
    // 1. Which way to the relay.
    let hops: Hop[];
    try {
      hops = dial.route ? await dial.route() : [{ kind: 'direct' }];
    } catch (err) {
      fail('proxy', describeConnectError(err, ctx));
      throw err;
    }
    const source = config.proxy.mode === 'pac' || config.proxy.mode === 'auto' ? `from the PAC file ${dial.pac}` : config.proxy.mode === 'system' ? (process.platform === 'win32' ? "from the machine's WinHTTP settings" : 'from the environment (proxy: system outside Windows)') : config.proxy.mode === 'env' ? 'from the environment' : 'from proxy: in agent.yaml';
    write(`✓ proxy       ${hops.map((h) => (h.kind === 'direct' ? 'DIRECT' : redactUrl(h.url.href))).join(', then ')} (${source})`);

    // 2-3. Connect, and through a proxy authenticate and CONNECT; the next hop only when one cannot be
    // reached. The same route as the agent's own dial (agent/tunnel-agent.ts openRoute).
    const connectMs = config.timeouts.connect;
    let raw: net.Socket | undefined;
    try {
      raw = await openRoute(hops, dial.relay, {
        ca: trust.ca,
        signal: AbortSignal.timeout(connectMs),
        onHop: (hop) => {
          dial.proxy = hop.kind === 'direct' ? undefined : describeProxy(hop.url, config.proxyAuth, hop.credentials);
        },
        onSkip: (_hop, err) => write(`✗ connect     ${describeConnectError(err, ctx).fields.detail}; trying the next entry`),
      });
    } catch (err) {
      if (err instanceof ProxyRefusal || err instanceof ProxyProtocolError) {
        write(`✓ connect     TCP to proxy ${dial.proxy?.hostPort}`);
        fail('proxy auth', describeConnectError(err, ctx));
      }
      if (isTimeout(err)) {
        fail('connect', waitedFor(dial.proxy ? `a connection and CONNECT tunnel through forward proxy ${dial.proxy.hostPort} to ${dial.relay}` : `a TCP connection to relay ${dial.relay}`, connectMs, ctx));
      }
      fail('connect', describeConnectError(err, ctx));
    }
    if (!raw) throw new StepFailed('connect');
    if (dial.proxy) {
      write(`✓ connect     TCP to proxy ${dial.proxy.hostPort}`);
      write(`✓ proxy auth  ${dial.proxy.auth ? `${dial.proxy.auth.scheme === 'ntlm' ? 'NTLM' : 'Basic'} accepted; ` : 'no credentials needed; '}tunnel to ${dial.relay} open`);
    } else {
      write(`✓ connect     TCP to relay ${dial.relay}`);
    }

    // 4. TLS with the configured trust, as the agent's dial does it.
    let stream: Duplex = raw;
    if (secure) {
      const socket = relayTls(raw, relayUrl.hostname, trust.ca ? { ca: trust.ca } : {});
      try {
        await whenConnected(socket, 'secureConnect', AbortSignal.timeout(connectMs));
      } catch (err) {
        if (isTimeout(err)) fail('tls', waitedFor(`the TLS handshake with relay ${dial.relay}`, connectMs, ctx));
        fail('tls', describeConnectError(err, ctx));
      }
      const peer = socket.getPeerCertificate();
      write(`✓ tls         certificate for ${peer.subject?.CN ?? '?'} issued by ${peer.issuer?.CN ?? peer.issuer?.O ?? '?'}, trusted by ${trust.sources.join(' + ')}`);
      stream = socket;
    } else {
      write('– tls         none (ws:// relay)');
    }

    // 5. The WebSocket handshake, with the token.
    // The agent's own WebSocket options and headers (relay-dial.ts), over the connection made above.
    const ws = relayWebSocket(config, new OneSocketAgent(stream, secure), undefined);
    ws.on('error', () => undefined); // after the first, which the wait below reads
    const closed = new Promise<[number, Buffer]>((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve([code, reason])));
    const upgraded = new Promise<RelayProblem | undefined>((resolve) => {
      ws.once('open', () => resolve(undefined));
      // A ctbridge relay says why in a JSON error body: its code, sentence and request id, read as the agent reads them.
      ws.once('unexpected-response', (_req, res) => readErrorReason(res, (refusal) => resolve(withRefusal(describeHttpStatus(res, ctx), refusal))));
      ws.once('error', (err) => resolve(describeConnectError(err, ctx)));
    });
    const problem = await bounded(upgraded, connectMs, () => {
      ws.terminate();
      return fail('websocket', waitedFor(`the relay's answer to the WebSocket upgrade (${redactUrl(config.relay)})`, connectMs, ctx));
    });
    if (problem) {
      ws.terminate();
      fail('websocket', problem);
    }
    // The relay checks the token after the upgrade. A hello offering no tunnels gets the verdict without
    // registering this process as the agent (which would take traffic from a running agent): the relay
    // then closes with 4401 for a bad token, or with 4204 (NO_TUNNELS_OFFERED) once the token passed.
    const hello: HelloMessage = { ...helloMessage(config), tunnels: [] };
    ws.send(Buffer.concat(encodeJson(FrameType.CONTROL, 0, 0, hello)));
    const [code, reasonBuf] = await bounded(closed, connectMs, () => {
      ws.terminate();
      return fail('websocket', waitedFor("the relay's verdict on the token (its answer to the hello)", connectMs, ctx));
    });
    if (code !== CloseCode.NO_TUNNELS_OFFERED) fail('websocket', describeClose(code, reasonBuf.toString('utf8'), ctx));
    write(`✓ websocket   the relay accepted the token (agent ${ctx.agentId ?? '?'}) and the tunnel protocol ${SUBPROTOCOL}`);
    return true;
  } catch (err) {
    if (err instanceof StepFailed) return false;
    throw err;
  }
}
