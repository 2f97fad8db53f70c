/**
 * `ctbridge agent verify --connect`: what IT runs when "it doesn't connect".
 * From the agent's host, without starting the agent: resolve the proxy for
 * the relay URL (environment, PAC file, WinHTTP), connect, authenticate to
 * the proxy, complete TLS with the configured trust, and do the WebSocket
 * handshake with the token. Prints each step with ✓/✗ and, at the first ✗,
 * what to do. Exit code 0 when every step passed.
 */
import { once } from 'node:events';
import http from 'node:http';
import { hostname } from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { createRelayDial, describeProxy, type RelayDial } from '../agent/forward-proxy.js';
import { openTunnel, ProxyRefusal } from '../agent/proxy-tunnel.js';
import { ProxyProtocolError } from '../agent/proxy-response.js';
import { describeClose, describeConnectError, describeHttpStatus, type RelayContext, type RelayProblem } from '../agent/relay-errors.js';
import { relayTrust } from '../agent/trust.js';
import { direct, type Hop } from '../agent/tunnel-agent.js';
import type { AgentConfig } from '../src/config/index.js';
import { loadAgentConfig } from '../src/config/index.js';
import { encodeJson, FrameType } from '../src/mux/frame.js';
import { CloseCode, PROTOCOL_VERSION, SOFTWARE_VERSION, SUBPROTOCOL, type HelloMessage } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import { decodeTokenUnverified } from '../src/token.js';

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
  let agentId: string | undefined;
  let tokenTunnels: string[] = [];
  try {
    const claims = decodeTokenUnverified(config.token);
    agentId = claims.agentId;
    tokenTunnels = claims.tunnels;
  } catch {
    // the relay will say so at the WebSocket step
  }
  const ctx: RelayContext = { relayUrl: config.relay, dial, connectTimeout: config.timeouts.connect, agentId, tunnels: [...new Set([...tokenTunnels, ...Object.keys(config.tunnels)])] };
  const relayUrl = new URL(config.relay);
  const secure = relayUrl.protocol === 'wss:';
  write(`  relay       ${redactUrl(config.relay)}`);
  const fail = (step: string, p: RelayProblem): never => {
    write(`✗ ${step.padEnd(11)} ${p.msg}`);
    if (p.fields.detail) write(`  ${''.padEnd(11)} ${String(p.fields.detail)}`);
    for (const k of ['proxyOffers', 'answeredBy', 'via'] as const) if (p.fields[k]) write(`  ${''.padEnd(11)} ${k}: ${String(p.fields[k])}`);
    if (p.fields.hint) write(`  what to do: ${String(p.fields.hint)}`);
    throw new StepFailed(step);
  };
  const signal = AbortSignal.timeout(config.timeouts.connect);
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

    // 2-3. Connect, and through a proxy authenticate and CONNECT; the next hop only when one cannot be reached.
    let raw: net.Socket | undefined;
    for (const [i, hop] of hops.entries()) {
      dial.proxy = hop.kind === 'direct' ? undefined : describeProxy(hop.url, config.proxyAuth, hop.credentials);
      try {
        raw = hop.kind === 'direct' ? await direct(dial.relay, signal) : await openTunnel(hop.url, dial.relay, { credentials: hop.credentials, ca: trust.ca, signal });
        break;
      } catch (err) {
        const refused = err instanceof ProxyRefusal || err instanceof ProxyProtocolError;
        if (refused) {
          write(`✓ connect     TCP to proxy ${dial.proxy?.hostPort}`);
          fail('proxy auth', describeConnectError(err, ctx));
        }
        if (i === hops.length - 1) fail('connect', describeConnectError(err, ctx));
        write(`✗ connect     ${describeConnectError(err, ctx).fields.detail}; trying the next entry`);
      }
    }
    if (!raw) throw new StepFailed('connect');
    if (dial.proxy) {
      write(`✓ connect     TCP to proxy ${dial.proxy.hostPort}`);
      write(`✓ proxy auth  ${dial.proxy.auth ? `${dial.proxy.auth.scheme === 'ntlm' ? 'NTLM' : 'Basic'} accepted; ` : 'no credentials needed; '}tunnel to ${dial.relay} open`);
    } else {
      write(`✓ connect     TCP to relay ${dial.relay}`);
    }

    // 4. TLS with the configured trust.
    let stream: Duplex = raw;
    if (secure) {
      const host = relayUrl.hostname.replace(/^\[|\]$/g, '');
      const socket = tls.connect({ socket: raw, servername: net.isIP(host) ? undefined : host, ...(trust.ca ? { ca: trust.ca } : {}) });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve);
          socket.once('error', reject);
        });
      } catch (err) {
        fail('tls', describeConnectError(err, ctx));
      }
      const peer = socket.getPeerCertificate();
      write(`✓ tls         certificate for ${peer.subject?.CN ?? '?'} issued by ${peer.issuer?.CN ?? peer.issuer?.O ?? '?'}, trusted by ${trust.sources.join(' + ')}`);
      stream = socket;
    } else {
      write('– tls         none (ws:// relay)');
    }

    // 5. The WebSocket handshake, with the token.
    const ws = new WebSocket(config.relay, [SUBPROTOCOL], {
      agent: new OneSocketAgent(stream, secure),
      headers: { authorization: `Bearer ${config.token}`, 'user-agent': SOFTWARE_VERSION },
      handshakeTimeout: config.timeouts.connect,
      followRedirects: false,
      perMessageDeflate: false,
    });
    const problem = await new Promise<RelayProblem | undefined>((resolve) => {
      ws.once('open', () => resolve(undefined));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(describeHttpStatus(res, ctx));
      });
      ws.once('error', (err) => resolve(describeConnectError(err, ctx)));
    });
    if (problem) {
      ws.terminate();
      fail('websocket', problem);
    }
    // The relay checks the token after the upgrade. A hello offering no tunnels gets the verdict without
    // registering this process as the agent (which would take traffic from a running agent): the relay
    // then closes with 4401 for a bad token, or with "agent offered no tunnels" once the token passed.
    const hello: HelloMessage = { type: 'hello', version: PROTOCOL_VERSION, tunnels: [], software: SOFTWARE_VERSION, hostname: hostname(), window: config.streamWindow };
    ws.send(Buffer.concat(encodeJson(FrameType.CONTROL, 0, 0, hello)));
    const [code, reasonBuf] = (await once(ws, 'close')) as [number, Buffer];
    const reason = reasonBuf.toString('utf8');
    if (code !== CloseCode.TUNNEL_NOT_ALLOWED || !/offered no tunnels/.test(reason)) fail('websocket', describeClose(code, reason, ctx));
    write(`✓ websocket   the relay accepted the token (agent ${agentId ?? '?'}) and the tunnel protocol ${SUBPROTOCOL}`);
    return true;
  } catch (err) {
    if (err instanceof StepFailed) return false;
    throw err;
  }
}
