/**
 * Whether the relay takes a public request, and where it goes: the tunnel
 * from the URL, the tunnel's policy (callers, paths), the caller as the
 * relay trusts it, and the one agent that will serve the exchange. Shared by
 * plain requests and WebSocket upgrades; refusals throw a CtbridgeError.
 */
import type { IncomingMessage } from 'node:http';
import type { RelayConfig, RelayTunnelConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import { pathAllowed } from '../src/http/request-path.js';
import type { MuxSession } from '../src/mux/session.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';
import { resolveForwarded, type ForwardedInfo } from './forwarded.js';
import { routeRequest, type Route } from './routing.js';

export type TunnelPolicy = Pick<RelayTunnelConfig, 'name' | 'kind' | 'allowFrom' | 'allowPaths' | 'maxRequestBody' | 'timeouts'>;

/** Where an admitted exchange goes: to an agent connected to this node, or to the node an agent is connected to. */
export interface Hop {
  session: MuxSession;
  /** The agent, when it is connected to this node. */
  agent?: ConnectedAgent;
  /** The relay node the exchange is forwarded to, when no agent for the tunnel is connected here. */
  node?: string;
}

/** The other relay nodes, as admission needs them (relay/cluster). */
export interface PeerNodes {
  pick(tunnel: string, avoid?: string): { session: MuxSession; nodeId: string } | undefined;
  knows(tunnel: string): boolean;
}

export interface Admitted {
  route: Route;
  policy: TunnelPolicy;
  forwarded: ForwardedInfo;
  /** Where the exchange goes: picked once, here. */
  hop: Hop;
}

export class Admission {
  constructor(
    private readonly live: { readonly config: RelayConfig },
    private readonly registry: AgentRegistry,
    private readonly encrypted: boolean,
    private readonly peers?: PeerNodes,
  ) {}

  /** The policy of a tunnel relay.yaml does not list (it is served because an agent for it connected). */
  private unlisted(name: string): TunnelPolicy {
    const { limits, timeouts } = this.live.config;
    return { name, kind: 'http', allowFrom: undefined, allowPaths: undefined, maxRequestBody: limits.maxRequestBody, timeouts: { request: timeouts.request, idle: timeouts.idle } };
  }

  /**
   * Another hop for a request whose exchange on `failed` died before the
   * agent answered (relay/resend.ts): an agent here other than the failed
   * one, or a node; undefined when none. `avoidNode`: the failed node itself
   * had no agent for the tunnel, so it is not tried again (a node whose
   * agent's link dropped may still have another agent for the tunnel).
   */
  rehop(tunnel: string, failed: Hop, avoidNode: boolean): Hop | undefined {
    const picked = this.registry.pick(tunnel, failed.agent);
    if ('agent' in picked) return { session: picked.agent.session, agent: picked.agent };
    const peer = this.peers?.pick(tunnel, avoidNode ? failed.node : undefined);
    return peer ? { session: peer.session, node: peer.nodeId } : undefined;
  }

  /**
   * Routes and checks `req`. `seen.tunnel` is set as soon as the URL names
   * a tunnel, so a refusal can still be shown in that tunnel's format.
   */
  admit(req: IncomingMessage, seen: { tunnel?: string }): Admitted {
    const { registry } = this;
    const config = this.live.config;
    const route = routeRequest(req.url ?? '/', req.headers.host, config.baseDomain);
    if (!route) {
      throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', 'this URL names no tunnel', { hint: `call ${config.publicUrl}/t/<tunnel>/<path>` });
    }
    seen.tunnel = route.tunnel;
    const configured = Object.hasOwn(config.tunnels, route.tunnel) ? config.tunnels[route.tunnel] : undefined;
    if (!configured && config.requireDeclaredTunnels) {
      throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', `tunnel '${route.tunnel}' is not declared in relay.yaml's tunnels, and requireDeclaredTunnels is on`, {
        hint: `add tunnels.${route.tunnel} (with its allowFrom and allowPaths) to relay.yaml and reload, if it should be served`,
      });
    }
    if (!configured && !registry.hasSeen(route.tunnel) && !this.peers?.knows(route.tunnel)) {
      throw new CtbridgeError('CTB_TUNNEL_UNKNOWN', `no tunnel named '${route.tunnel}' on this relay`, {
        hint: 'check the tunnel name in the URL; an agent serving it has never connected here',
      });
    }
    const policy = configured ?? this.unlisted(route.tunnel);
    const forwarded = resolveForwarded(req, config.trustedProxies, this.encrypted);
    if (policy.allowFrom && !policy.allowFrom.contains(forwarded.client)) {
      throw new CtbridgeError('CTB_SOURCE_NOT_ALLOWED', `address ${forwarded.client} may not call tunnel '${route.tunnel}'`, {
        hint: `add it to tunnels.${route.tunnel}.allowFrom in the relay config if it should`,
      });
    }
    if (!pathAllowed(route.path, policy.allowPaths)) {
      throw new CtbridgeError('CTB_PATH_NOT_ALLOWED', `path not exposed by tunnel '${route.tunnel}'`);
    }
    const picked = registry.pick(route.tunnel);
    if ('agent' in picked) return { route, policy, forwarded, hop: { session: picked.agent.session, agent: picked.agent } };
    // No agent here that can take it: another node's, if one serves the tunnel.
    const peer = this.peers?.pick(route.tunnel);
    if (peer) return { route, policy, forwarded, hop: { session: peer.session, node: peer.nodeId } };
    if ('none' in picked) {
      throw new CtbridgeError('CTB_AGENT_NOT_CONNECTED', `the on-premise agent for tunnel '${route.tunnel}' is not connected to the relay`, {
        hint: 'ask the IT team to check the ctbridge agent service and its log',
      });
    }
    if ('draining' in picked) {
      throw new CtbridgeError('CTB_SHUTTING_DOWN', `the on-premise agent for tunnel '${route.tunnel}' is restarting`, {
        hint: 'retry in a few seconds; run two agents for the tunnel to restart them one at a time without a gap',
      });
    }
    throw new CtbridgeError('CTB_AGENT_BUSY', `every agent for tunnel '${route.tunnel}' is at its limit of ${config.limits.maxStreamsPerAgent} concurrent exchanges`, {
      hint: 'retry shortly, or raise limits.maxStreamsPerAgent',
    });
  }
}
