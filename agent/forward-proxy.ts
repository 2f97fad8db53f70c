/**
 * How the agent dials the relay: directly, or through a corporate forward
 * proxy (HTTP CONNECT with Basic or NTLM credentials, see tunnel-agent.ts),
 * with the roots of `trust:` (Node's, the system's) and `ca:` trusted for
 * both the relay and an https:// proxy (trust.ts).
 */
import { getProxyForUrl } from 'proxy-from-env';
import type { Agent } from 'node:http';
import type { AgentConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import { redactUrl } from '../src/redact.js';
import { credentialsFor } from './proxy-tunnel.js';
import { relayTrust, type Trust } from './trust.js';
import { TunnelAgent } from './tunnel-agent.js';

export interface RelayDial {
  /** host:port of the relay. */
  relay: string;
  /** The forward proxy, or undefined for a direct connection. */
  proxy: DialProxy | undefined;
  /** TLS trust for the relay (and proxy): `trust:` sources plus `ca:`; undefined = Node's defaults. */
  ca: string[] | undefined;
  /** Whether the operating system's store is among the trusted roots. */
  trustsSystem?: boolean;
  agent: Agent | undefined;
}

export interface DialProxy {
  url: string;
  /** For logs: the password masked. */
  display: string;
  hostPort: string;
  hasCredentials: boolean;
  /** Where the credentials come from: `proxyAuth:` (Basic or NTLM) or the proxy URL's user-info (Basic). */
  auth?: { scheme: 'basic' | 'ntlm'; source: 'proxyAuth' | 'url' };
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

export function hostPortOf(url: URL): string {
  return `${url.hostname}:${url.port || DEFAULT_PORTS[url.protocol] || '?'}`;
}

/** The relay URL with http(s) for ws(s): what HTTPS_PROXY/NO_PROXY rules are written against. */
export function httpEquivalent(relay: string): URL {
  const u = new URL(relay);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return u;
}

/**
 * The proxy URL to use, or undefined for direct. `env` mode follows
 * HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY like curl does; a value
 * without a scheme ("proxy.corp:3128") means an http:// proxy.
 */
export function resolveProxyUrl(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (config.proxy.mode === 'none') return undefined;
  if (config.proxy.mode === 'url') return config.proxy.url;
  if (config.proxy.mode !== 'env') {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `proxy: ${config.proxy.mode} is not supported yet`, { hint: 'set proxy: to the proxy URL' });
  }
  const target = httpEquivalent(config.relay);
  const found = getProxyForUrl(target.href);
  if (!found) return undefined;
  const scheme = target.protocol.slice(0, -1);
  const raw = env[`${scheme}_proxy`] || env[`${scheme.toUpperCase()}_PROXY`] || env.all_proxy || env.ALL_PROXY || '';
  const url = !raw.includes('://') && found.startsWith('https://') ? `http://${found.slice('https://'.length)}` : found;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `the forward proxy from the environment (${redactUrl(url)}) is not a valid URL`, {
      hint: 'fix HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or set proxy: in agent.yaml ("none" for a direct connection)',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `the forward proxy from the environment (${redactUrl(url)}) is not an http:// or https:// proxy`, {
      hint: 'ctbridge speaks HTTP CONNECT only; set proxy: in agent.yaml to an http:// proxy, or "none"',
    });
  }
  return parsed.href;
}

export function createRelayDial(config: AgentConfig, env: NodeJS.ProcessEnv = process.env, trust: Trust = relayTrust(config)): RelayDial {
  const relayUrl = new URL(config.relay);
  const relay = hostPortOf(relayUrl);
  const { ca } = trust;
  const proxyUrl = resolveProxyUrl(config, env);
  const trustsSystem = trust.sources.some((s) => s.startsWith('system'));
  if (!proxyUrl) return { relay, proxy: undefined, ca, trustsSystem, agent: undefined };
  const parsed = new URL(proxyUrl);
  const credentials = credentialsFor(parsed, config.proxyAuth);
  const dial: RelayDial = {
    relay,
    proxy: {
      url: proxyUrl,
      display: redactUrl(proxyUrl),
      hostPort: hostPortOf(parsed),
      hasCredentials: credentials !== undefined,
      ...(config.proxyAuth ? { auth: { scheme: config.proxyAuth.scheme, source: 'proxyAuth' as const } } : credentials ? { auth: { scheme: 'basic' as const, source: 'url' as const } } : {}),
    },
    ca,
    trustsSystem,
    agent: new TunnelAgent({
      secure: relayUrl.protocol === 'wss:',
      target: relay,
      ca,
      timeoutMs: config.timeouts.connect,
      route: async () => [{ kind: 'proxy', url: parsed, credentials }],
    }),
  };
  return dial;
}
