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
import type { Logger } from '../src/log.js';
import { untrusted } from '../src/log-text.js';
import { PacError, PacFile, parsePacAnswer, WPAD_URL } from './pac.js';
import { credentialsFor, type ProxyCredentials } from './proxy-tunnel.js';
import { relayTrust, type Trust } from './trust.js';
import { TunnelAgent, type Hop } from './tunnel-agent.js';
import { bypassed, proxyForScheme, readWinHttpProxy, type WinHttpProxy } from './winhttp.js';

export interface RelayDial {
  /** host:port of the relay. */
  relay: string;
  /** The forward proxy (with a PAC file: the one the last attempt used), or undefined for a direct connection. */
  proxy: DialProxy | undefined;
  /** TLS trust for the relay (and proxy): `trust:` sources plus `ca:`; undefined = Node's defaults. */
  ca: string[] | undefined;
  /** Whether trust: in agent.yaml names the operating system's store (as configured, whether or not it could be read). */
  trustsSystem?: boolean;
  /** trust: names system, but the store cannot be read here: why (for the certificate hint). */
  systemUnreadable?: string;
  /** The PAC file choosing the proxy (proxy: pac+... or auto), for messages. */
  pac?: string;
  /** The hops to try for one connection; undefined = direct. */
  route?: () => Promise<Hop[]>;
  /** PAC: forget the fetched file, fetch and evaluate it again now (on reload); failures are logged, not thrown. */
  refresh?: () => void;
  agent: Agent | undefined;
}

export interface DialProxy {
  url: string;
  /** For logs: the password masked. */
  display: string;
  hostPort: string;
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
  // proxy: system outside Windows: the environment, as for env.
  if (config.proxy.mode !== 'env' && !(config.proxy.mode === 'system' && process.platform !== 'win32')) {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `proxy: ${config.proxy.mode} has no single proxy URL`, { hint: 'set proxy: to the proxy URL' });
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

export function describeProxy(url: URL, auth: AgentConfig['proxyAuth'], credentials: ProxyCredentials | undefined): DialProxy {
  return {
    url: url.href,
    display: redactUrl(url.href),
    hostPort: hostPortOf(url),
    ...(auth ? { auth: { scheme: auth.scheme, source: 'proxyAuth' as const } } : credentials ? { auth: { scheme: 'basic' as const, source: 'url' as const } } : {}),
  };
}

/** The PAC file `config.proxy` names (proxy: pac+... or auto for WPAD), or undefined. */
export function pacUrlOf(config: AgentConfig): string | undefined {
  return config.proxy.mode === 'pac' ? config.proxy.url : config.proxy.mode === 'auto' ? WPAD_URL : undefined;
}

/** The hops for each connection from a PAC file: the file fetched once (shared: PacFile), evaluated per connection. */
function pacRoute(config: AgentConfig, pac: PacFile, log: Logger | undefined): { route: () => Promise<Hop[]>; refresh: () => void } {
  let lastAnswer: string | undefined;
  const target = httpEquivalent(config.relay).href;
  const route = async (): Promise<Hop[]> => {
    const answer = await pac.find(target);
    const { hops, skipped } = parsePacAnswer(answer);
    if (answer !== lastAnswer) {
      lastAnswer = answer;
      log?.info({ pac: redactUrl(pac.url), relay: redactUrl(config.relay), answer: untrusted(answer, 300), ...(skipped.length ? { skipped } : {}) }, 'PAC answer for the relay');
    }
    if (hops.length === 0) {
      throw new PacError(`the PAC file ${redactUrl(pac.url)} answered ${JSON.stringify(untrusted(answer, 100))} for the relay: no DIRECT, PROXY or HTTPS entry ctbridge can use (SOCKS is not supported)`);
    }
    return hops.map((h): Hop => {
      if (h.kind === 'direct') return h;
      const url = new URL(h.url);
      return { kind: 'proxy', url, credentials: credentialsFor(url, config.proxyAuth) };
    });
  };
  // After pac.refresh() (a reload): evaluate again now and log the answer (a failure is logged, not thrown).
  const refresh = () => {
    lastAnswer = undefined;
    route().catch((err: Error) => log?.warn({ pac: redactUrl(pac.url), detail: err.message }, 'proxy auto-configuration (PAC) failed'));
  };
  return { route, refresh };
}

/** proxy: system on Windows: the WinHTTP proxy and its bypass list, read once per dial. */
function winHttpRoute(config: AgentConfig, log: Logger | undefined): () => Promise<Hop[]> {
  let settings: Promise<WinHttpProxy> | undefined;
  let logged = false;
  const relay = new URL(config.relay);
  return async () => {
    settings ??= readWinHttpProxy();
    let w: WinHttpProxy;
    try {
      w = await settings;
    } catch (err) {
      settings = undefined;
      throw err;
    }
    const proxy = w.proxy ? proxyForScheme(w.proxy, relay.protocol === 'wss:' ? 'https' : 'http') : undefined;
    const direct = !proxy || bypassed(relay.hostname, w.bypass);
    if (!logged) {
      logged = true;
      log?.info({ winhttpProxy: w.proxy ?? 'direct access', bypass: w.bypass, relay: redactUrl(config.relay), via: direct ? 'direct' : redactUrl(proxy) }, 'WinHTTP proxy for the relay');
    }
    if (direct) return [{ kind: 'direct' }];
    const url = new URL(proxy);
    return [{ kind: 'proxy', url, credentials: credentialsFor(url, config.proxyAuth) }];
  };
}

/** How this relay URL is reached: the hops for each connection (none: direct), and for messages the proxy or PAC file. */
function wayToRelay(config: AgentConfig, env: NodeJS.ProcessEnv, log: Logger | undefined, pacFile: PacFile | undefined): Pick<RelayDial, 'proxy' | 'pac' | 'route' | 'refresh'> {
  const pacUrl = pacUrlOf(config);
  if (pacUrl) {
    const { route, refresh } = pacRoute(config, pacFile ?? new PacFile(pacUrl, config.timeouts.connect), log);
    return { proxy: undefined, pac: redactUrl(pacUrl), route, refresh };
  }
  if (config.proxy.mode === 'system' && process.platform === 'win32') return { proxy: undefined, route: winHttpRoute(config, log) };
  const proxyUrl = resolveProxyUrl(config, env);
  if (!proxyUrl) return { proxy: undefined };
  const parsed = new URL(proxyUrl);
  const credentials = credentialsFor(parsed, config.proxyAuth);
  return { proxy: describeProxy(parsed, config.proxyAuth, credentials), route: async () => [{ kind: 'proxy', url: parsed, credentials }] };
}

/**
 * The dial to `config.relay`, built once for every connection to it: the
 * way there (wayToRelay) and, unless direct, the http.Agent that takes it.
 * `pacFile`: the PAC file shared with the other relay URLs' dials (one
 * fetch for all); without it, the dial fetches its own.
 */
export function createRelayDial(config: AgentConfig, env: NodeJS.ProcessEnv = process.env, trust: Trust = relayTrust(config), log?: Logger, pacFile?: PacFile): RelayDial {
  const relayUrl = new URL(config.relay);
  const relay = hostPortOf(relayUrl);
  const { ca, systemUnreadable } = trust;
  // The configured value: with trust: [system] on a Node that cannot read the store, "add system to trust:" would be wrong.
  const dial: RelayDial = { relay, ca, trustsSystem: config.trust.includes('system'), systemUnreadable, agent: undefined, ...wayToRelay(config, env, log, pacFile) };
  if (!dial.route) return dial;
  dial.agent = new TunnelAgent({
    secure: relayUrl.protocol === 'wss:',
    target: relay,
    ca,
    timeoutMs: config.timeouts.connect,
    route: dial.route,
    onHop: (hop) => {
      dial.proxy = hop.kind === 'direct' ? undefined : describeProxy(hop.url, config.proxyAuth, hop.credentials);
    },
  });
  return dial;
}
