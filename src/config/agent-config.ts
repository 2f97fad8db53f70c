/**
 * agent.yaml → AgentConfig: validated, defaults applied, CTBRIDGE_AGENT_TOKEN
 * applied, deeply frozen; durations in ms, sizes in bytes, CA files loaded.
 */
import {
  DEFAULT_AGENT_PATH,
  beginParse,
  finishParse,
  hostPort,
  parseAdmin,
  parseAllowPaths,
  parseCidrList,
  parseHeartbeat,
  parseLog,
  parseStreamWindow,
  parseTunnels,
  type AdminConfig,
  type HeartbeatConfig,
  type LogConfig,
  type ParseConfigOptions,
} from './common.js';
import { parseInspect, type InspectConfig } from './inspect.js';
import { httpUrl, parseProxyAuth, parseTrust, proxy, type AgentProxyConfig, type ProxyAuthConfig, type TrustSource } from './agent-network.js';
import { caBundle, readText, type LoadedText } from './files.js';
import { typeName, type Section } from './schema-check.js';
import { CidrList, ValueError, formatDuration, formatValue, parseHostPort, type HostPort } from './units.js';
import { boolean, duration, formatUrlValue, integer, size, stripTrailingSlash, url } from './values.js';

export const AGENT_TOKEN_ENV = 'CTBRIDGE_AGENT_TOKEN';

export type { AgentProxyConfig, ProxyAuthConfig, TrustSource } from './agent-network.js';

/** Host header sent to the target: the target's host, the caller's, or a fixed `host[:port]`. */
export type HostHeaderPolicy = { readonly mode: 'target' } | { readonly mode: 'preserve' } | { readonly mode: 'literal'; readonly host: string };

export interface AgentTimeouts {
  /** All in ms. */
  readonly connect: number;
  readonly idle: number;
  readonly request: number;
}

export interface AgentTunnelConfig {
  readonly name: string;
  /** http(s) URL, possibly with a base path; no trailing slash, so `target + path` is the upstream URL. */
  readonly target: string;
  readonly hostHeader: HostHeaderPolicy;
  /** Extra CA certificates for an https target. */
  readonly ca: LoadedText | undefined;
  readonly tlsVerify: boolean;
  /** Exact paths or prefixes ending in `/`; undefined = every path. */
  readonly allowPaths: readonly string[] | undefined;
  readonly timeouts: AgentTimeouts;
}

export interface AgentEgressConfig {
  readonly listen: HostPort;
  readonly allowFrom: CidrList;
  /** Bytes. */
  readonly maxBody: number;
}

export interface AgentConfig {
  readonly file: string;
  /** ws(s) URL of the relay's agent endpoint (path defaults to /_ctbridge/agent); the first of `relays`. */
  readonly relay: string;
  /**
   * Every relay instance to hold a connection to (`relay:` as a list): with
   * several relays behind a load balancer, each needs the agent.
   */
  readonly relays: readonly string[];
  readonly token: string;
  /** `file`: read from `tokenFile` (read again on reload, so a new token needs no restart). */
  readonly tokenSource: 'config' | 'env' | 'file';
  /** The admin listener: health, readiness, metrics, status, reload. */
  readonly admin: AdminConfig;
  /** Extra CA certificates trusted for the relay and the proxy. */
  readonly ca: LoadedText | undefined;
  readonly proxy: AgentProxyConfig;
  /** Credentials for the forward proxy (Basic also works from the proxy URL's user-info). */
  readonly proxyAuth: ProxyAuthConfig | undefined;
  /** Root certificate stores trusted for the relay and an https:// proxy, next to `ca`. */
  readonly trust: readonly TrustSource[];
  /** Null-prototype map: tunnel name → target. */
  readonly tunnels: Readonly<Record<string, AgentTunnelConfig>>;
  readonly egress: AgentEgressConfig | undefined;
  /** ms. */
  readonly reconnect: { readonly initialDelay: number; readonly maxDelay: number };
  readonly heartbeat: HeartbeatConfig;
  readonly limits: { readonly maxStreams: number; readonly maxHeaderSize: number };
  readonly timeouts: AgentTimeouts & { readonly shutdownGrace: number };
  readonly streamWindow: number;
  readonly log: LogConfig;
  /** Recent exchanges kept for the admin listener (`inspect: off`: none). */
  readonly inspect: InspectConfig;
}

const ROOT_KEYS = [
  'relay', 'token', 'tokenFile', 'ca', 'trust', 'proxy', 'proxyAuth', 'tunnels', 'egress', 'reconnect', 'admin',
  'heartbeat', 'limits', 'timeouts', 'streamWindow', 'log', 'inspect',
];
const TUNNEL_KEYS = ['target', 'hostHeader', 'ca', 'tlsVerify', 'allowPaths', 'timeouts'];
const LOOPBACK = new CidrList(['127.0.0.0/8', '::1/128']);

const wsUrl = url({ protocols: ['ws:', 'wss:'] });

function relayUrl(v: unknown): string {
  if (typeof v === 'string' && /^https?:/i.test(v.trim())) {
    throw new ValueError(`expected a ws:// or wss:// URL (ws:// for http://, wss:// for https://), got ${formatUrlValue(v)}`);
  }
  const u = new URL(wsUrl(v));
  if (u.pathname === '/') u.pathname = DEFAULT_AGENT_PATH;
  return u.href;
}

/** One URL, or a list of them (one per relay instance). */
function relayUrls(v: unknown): string[] {
  if (!Array.isArray(v)) return [relayUrl(v)];
  if (v.length === 0) throw new ValueError('expected a ws:// or wss:// URL, or a non-empty list of them, got an empty list');
  return [
    ...new Set(
      v.map((item, i) => {
        try {
          return relayUrl(item);
        } catch (err) {
          throw new ValueError(`item ${i + 1}: ${(err as Error).message}`);
        }
      }),
    ),
  ];
}

/** A JWT: three base64url parts. Never echoed. */
function token(where: string): (v: unknown) => string {
  return (v) => {
    const t = typeof v === 'string' ? v.trim() : '';
    if (/^[\w-]+\.[\w-]+\.[\w-]*$/.test(t)) return t;
    throw new ValueError(`expected a token (a JWT: three base64url parts joined by ".")${where}, got ${typeof v === 'string' ? 'something else' : typeName(v)}`);
  };
}

function hostHeader(v: unknown): HostHeaderPolicy {
  if (v === 'target' || v === 'preserve') return { mode: v };
  try {
    parseHostPort(v, { portOptional: true });
  } catch {
    throw new ValueError(`expected "target", "preserve" or a host[:port] such as "intranet.example:8080", got ${formatValue(v)}`);
  }
  return { mode: 'literal', host: v as string };
}

function parseAgentTunnel(name: string, tunnels: Section, defaults: AgentTimeouts): AgentTunnelConfig {
  const s = tunnels.section(name, TUNNEL_KEYS);
  const target = s.req('target', httpUrl, 'an http:// or https:// URL such as "http://127.0.0.1:7224"');
  const ca = s.opt('ca', caBundle(s.problems.baseDir));
  if (ca && target?.startsWith('http:')) s.fail('ca', 'only used with an https:// target');
  const timeouts = s.section('timeouts', ['connect', 'idle', 'request']);
  return {
    name,
    target: target ? stripTrailingSlash(target) : '',
    hostHeader: s.get('hostHeader', hostHeader, { mode: 'target' }),
    ca,
    tlsVerify: s.get('tlsVerify', boolean, true),
    allowPaths: parseAllowPaths(s),
    timeouts: {
      connect: timeouts.get('connect', duration(), defaults.connect),
      idle: timeouts.get('idle', duration(), defaults.idle),
      request: timeouts.get('request', duration(), defaults.request),
    },
  };
}

function parseEgress(root: Section): AgentEgressConfig | undefined {
  const s = root.section('egress', ['listen', 'allowFrom', 'maxBody']);
  if (!s.present) return undefined;
  return {
    listen: s.req('listen', hostPort, 'host:port such as "127.0.0.1:8181"') ?? { host: '', port: 0 },
    allowFrom: parseCidrList(s, 'allowFrom', LOOPBACK),
    maxBody: s.get('maxBody', size(), 1024 ** 2),
  };
}

function parseReconnect(root: Section): AgentConfig['reconnect'] {
  const s = root.section('reconnect', ['initialDelay', 'maxDelay']);
  const initialDelay = s.get('initialDelay', duration(), 500);
  const maxDelay = s.get('maxDelay', duration(), 10_000);
  if (maxDelay < initialDelay) {
    s.fail('maxDelay', `expected a duration of at least reconnect.initialDelay (${formatDuration(initialDelay)}), got ${formatDuration(maxDelay)}`);
  }
  return { initialDelay, maxDelay };
}

/** Validate an agent config object (parsed YAML or built in memory). Throws `ConfigErrors`. */
export function parseAgentConfig(
  obj: unknown,
  file = 'agent config',
  env: NodeJS.ProcessEnv = process.env,
  options: ParseConfigOptions = {},
): AgentConfig {
  const root = beginParse(obj, file, options, ROOT_KEYS);

  const envToken = env[AGENT_TOKEN_ENV]?.trim() || undefined;
  let tokenValue: string | undefined;
  let tokenSource: AgentConfig['tokenSource'] = 'config';
  if (envToken !== undefined) {
    tokenSource = 'env';
    tokenValue = root.check('token', envToken, token(` in the ${AGENT_TOKEN_ENV} environment variable`));
  } else if (root.has('token') && root.has('tokenFile')) {
    root.fail('', 'expected one of token, tokenFile, got both');
  } else if (root.has('tokenFile')) {
    tokenSource = 'file';
    const loaded = root.opt('tokenFile', (v) => readText(root.problems.baseDir, v));
    if (loaded) tokenValue = root.check('tokenFile', loaded.text.trim(), token(` in ${loaded.file}`));
  } else if (root.has('token')) {
    tokenValue = root.opt('token', token(''));
  } else {
    root.fail('token', `missing; set token or tokenFile in ${file}, or the ${AGENT_TOKEN_ENV} environment variable`);
  }

  const t = root.section('timeouts', ['connect', 'idle', 'request', 'shutdownGrace']);
  const timeouts = {
    connect: t.get('connect', duration(), 10_000),
    idle: t.get('idle', duration(), 150_000),
    request: t.get('request', duration(), 300_000),
    shutdownGrace: t.get('shutdownGrace', duration({ min: 0 }), 30_000),
  };
  const limits = root.section('limits', ['maxStreams', 'maxHeaderSize']);

  const relays = root.req('relay', relayUrls, 'a ws:// or wss:// URL such as "wss://relay.example.com", or a list of them') ?? [''];
  const config: AgentConfig = {
    file,
    relay: relays[0],
    relays,
    token: tokenValue ?? '',
    tokenSource,
    admin: parseAdmin(root, 'agent'),
    ca: root.opt('ca', caBundle(root.problems.baseDir)),
    proxy: root.get('proxy', proxy, { mode: 'env' }),
    proxyAuth: parseProxyAuth(root, env),
    trust: parseTrust(root),
    tunnels: parseTunnels(root, (name, tunnels) => parseAgentTunnel(name, tunnels, timeouts), {
      required: true,
      example: '"ucws: { target: http://127.0.0.1:7224 }"',
    }),
    egress: parseEgress(root),
    reconnect: parseReconnect(root),
    heartbeat: parseHeartbeat(root),
    limits: {
      maxStreams: limits.get('maxStreams', integer(1, 100_000), 1000),
      maxHeaderSize: limits.get('maxHeaderSize', size({ min: 1024, max: 16 * 1024 ** 2 }), 16 * 1024),
    },
    timeouts,
    streamWindow: parseStreamWindow(root),
    log: parseLog(root),
    inspect: parseInspect(root),
  };
  return finishParse(root, config);
}
