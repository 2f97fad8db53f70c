/**
 * An agent's hello, once its token is verified: every field checked (the
 * agent is untrusted), the tunnels it offers against those its token
 * allows; then the agent is registered and told `ready` with its public
 * URLs. A hello that does not pass closes the connection with a code and a
 * reason the agent logs.
 */
import type { RelayConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import { untrusted } from '../src/log-text.js';
import type { MuxSession } from '../src/mux/session.js';
import { CloseCode, PROTOCOL_VERSION, isTunnelName, type HelloMessage, type ReadyMessage } from '../src/protocol.js';
import type { VerifiedAgentClaims } from '../src/token.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';

/** What accepting a hello needs of the endpoint (relay/agent-endpoint.ts AgentEndpointOptions). */
export interface HelloDeps {
  live: { readonly config: RelayConfig };
  registry: AgentRegistry;
  publicUrlFor: (tunnel: string) => string;
  nodes?: () => { node: string; nodes: string[] };
}

const MAX_HELLO_TUNNELS = 1000;

/** The hello's fields if they have the right types, else which one is wrong. */
function checkHello(msg: Record<string, unknown>): { hello: HelloMessage } | { problem: string } {
  const { version, tunnels, software, hostname, window } = msg;
  if (typeof version !== 'number') return { problem: 'hello.version is not a number' };
  if (!Array.isArray(tunnels) || tunnels.length > MAX_HELLO_TUNNELS || !tunnels.every((t) => typeof t === 'string' && isTunnelName(t))) {
    return { problem: 'hello.tunnels is not a list of tunnel names' };
  }
  if (typeof software !== 'string' || typeof hostname !== 'string') return { problem: 'hello.software or hello.hostname is not a string' };
  if (typeof window !== 'number') return { problem: 'hello.window is not a number' };
  return { hello: { type: 'hello', version, tunnels: [...new Set(tunnels as string[])], software, hostname, window } };
}

/** The registered agent, or undefined when the hello was refused (the connection is closing). */
export function acceptHello(
  opts: HelloDeps,
  session: MuxSession,
  msg: Record<string, unknown>,
  claims: VerifiedAgentClaims,
  connectionId: string,
  remote: string,
  clog: Logger,
): ConnectedAgent | undefined {
  const { agentId, tunnels: allowed } = claims;
  const checked = checkHello(msg);
  if ('problem' in checked) {
    clog.warn({ agentId, problem: checked.problem }, 'agent refused: malformed hello');
    session.close(CloseCode.BAD_HELLO, `malformed hello: ${checked.problem}`);
    return undefined;
  }
  const { hello } = checked;
  if (hello.version !== PROTOCOL_VERSION) {
    const reason = `agent speaks tunnel protocol ${hello.version}, this relay speaks ${PROTOCOL_VERSION}; run the same ctbridge version on both`;
    clog.warn({ agentId, software: untrusted(hello.software) }, `agent refused: ${reason}`);
    session.close(CloseCode.VERSION_MISMATCH, reason);
    return undefined;
  }
  const tunnels = hello.tunnels;
  if (tunnels.length === 0) {
    // `agent verify --connect` checks its token this way: accepted, nothing registered, no traffic taken from a running agent.
    clog.info({ agentId, software: untrusted(hello.software), agentHostname: untrusted(hello.hostname) }, 'agent token checked: the hello offered no tunnels (agent verify --connect)');
    session.close(CloseCode.NO_TUNNELS_OFFERED, 'token accepted; agent offered no tunnels');
    return undefined;
  }
  const extra = tunnels.filter((t) => !allowed.includes(t));
  if (extra.length > 0) {
    const reason = `tunnel ${extra.map((t) => `'${t}'`).join(', ')} not in token for agent '${agentId}' (token allows: ${allowed.join(', ')})`;
    clog.warn({ agentId, offered: tunnels, allowed }, `agent refused: ${reason}`);
    session.close(CloseCode.TUNNEL_NOT_ALLOWED, reason);
    return undefined;
  }
  const agent: ConnectedAgent = {
    connectionId, agentId, remoteAddress: remote, tunnels, session, draining: false,
    claims, since: new Date(), software: untrusted(hello.software, 100), hostname: untrusted(hello.hostname, 100),
  };
  opts.registry.add(agent);
  // requireDeclaredTunnels: the connection stays (its declared tunnels serve); the others get no public URL and no request.
  const config = opts.live.config;
  const undeclared = config.requireDeclaredTunnels ? tunnels.filter((t) => !Object.hasOwn(config.tunnels, t)) : [];
  if (undeclared.length) {
    clog.warn({ agentId, tunnels: undeclared }, "agent's tunnels not served: relay.yaml does not declare them and requireDeclaredTunnels is on; add them to tunnels: and reload to serve them");
  }
  const publicUrls = Object.fromEntries(tunnels.filter((t) => !undeclared.includes(t)).map((t) => [t, opts.publicUrlFor(t)]));
  session.setPeerWindow(hello.window);
  const ready: ReadyMessage = { type: 'ready', version: PROTOCOL_VERSION, connectionId, publicUrls, window: opts.live.config.streamWindow, ...opts.nodes?.() };
  session.sendControl(ready);
  clog.info({
    agentId, tunnels, software: untrusted(hello.software), agentHostname: untrusted(hello.hostname),
    tokenId: claims.tokenId, keyId: claims.keyId, tokenExpiresAt: claims.expiresAt.toISOString(),
  }, 'agent connected');
  return agent;
}
