/**
 * relay.yaml → RelayConfig: validated, defaults applied, CTBRIDGE_JWT_SECRET
 * applied, deeply frozen; durations in ms, sizes in bytes, files loaded.
 */
import {
  DEFAULT_AGENT_PATH,
  beginParse,
  finishParse,
  hostPort,
  parseCidrList,
  parseAdmin,
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
import { certMatchesKey, certificate, tlsKey, type LoadedText } from './files.js';
import { parseRelayAuth, type RelayAuthConfig } from './relay-auth.js';
import { parseCluster, type ClusterConfig } from './relay-cluster.js';
import { parseRelayTunnel, type RelayTunnelConfig } from './relay-tunnels.js';
import type { Section } from './schema-check.js';
import { CidrList, ValueError, formatHostPort, formatValue, type HostPort } from './units.js';
import { boolean, domain, duration, integer, size, stripTrailingSlash, url } from './values.js';

export interface RelayTlsConfig {
  readonly cert: LoadedText;
  readonly key: LoadedText;
}

export interface RelayLimits {
  /** Bytes (default 100MiB). */
  readonly maxRequestBody: number;
  /** Bytes; 0 = unlimited. */
  readonly maxResponseBody: number;
  readonly maxHeaderSize: number;
  readonly maxStreamsPerAgent: number;
}

export interface RelayTimeouts {
  /** All in ms. */
  readonly request: number;
  readonly idle: number;
  readonly handshake: number;
  readonly shutdownGrace: number;
  /**
   * After SIGTERM: how long the relay keeps taking public requests while
   * reporting not ready, so a load balancer stops sending it any before it
   * closes. Default 5 s with `cluster:`, else 0.
   */
  readonly drainDelay: number;
}

export interface RelayConfig {
  /** The config file (as given) or label it was parsed from. */
  readonly file: string;
  readonly listen: HostPort;
  /** Base URL clients and agents use; no trailing slash. Default `http(s)://<listen>`. */
  readonly publicUrl: string;
  /** Enables `<tunnel>.<baseDomain>` host routing; lower-case. */
  readonly baseDomain: string | undefined;
  readonly agentPath: string;
  readonly tls: RelayTlsConfig | undefined;
  readonly auth: RelayAuthConfig;
  readonly trustedProxies: CidrList;
  readonly limits: RelayLimits;
  readonly timeouts: RelayTimeouts;
  readonly heartbeat: HeartbeatConfig;
  /** Bytes of per-stream flow-control window. */
  readonly streamWindow: number;
  readonly log: LogConfig;
  /** Recent exchanges kept for the admin listener (`inspect: off`: none). */
  readonly inspect: InspectConfig;
  /** The admin listener: health, readiness, metrics, status, reload. */
  readonly admin: AdminConfig;
  /** Several relay nodes behind one load balancer; undefined: a single relay. */
  readonly cluster: ClusterConfig | undefined;
  /** Null-prototype map: tunnel name → policy. */
  readonly tunnels: Readonly<Record<string, RelayTunnelConfig>>;
  /**
   * Serve only the tunnels `tunnels:` names: a tunnel an agent's token names
   * but relay.yaml does not is refused (404) instead of served to anyone on
   * every path. Default false (the earlier behaviour).
   */
  readonly requireDeclaredTunnels: boolean;
}

const ROOT_KEYS = [
  'listen', 'publicUrl', 'baseDomain', 'agentPath', 'tls', 'auth', 'trustedProxies',
  'limits', 'timeouts', 'heartbeat', 'streamWindow', 'log', 'inspect', 'admin', 'cluster', 'metrics', 'tunnels', 'requireDeclaredTunnels',
];

export const DEFAULT_RELAY_LISTEN: HostPort = { host: '127.0.0.1', port: 8080 };

/** A path for an HTTP endpoint: starts with `/`, no spaces, query or fragment. */
function endpointPath(v: unknown): string {
  if (typeof v === 'string' && /^\/[^\s?#]*$/.test(v)) return v;
  throw new ValueError(`expected a path starting with "/" such as "${DEFAULT_AGENT_PATH}", got ${formatValue(v)}`);
}

function parseTls(root: Section): RelayTlsConfig | undefined {
  const s = root.section('tls', ['cert', 'key']);
  if (!s.present) return undefined;
  const baseDir = s.problems.baseDir;
  const cert = s.req('cert', certificate(baseDir), 'a PEM certificate file');
  const key = s.req('key', tlsKey(baseDir), 'a PEM private key file');
  if (cert && key && !certMatchesKey(cert.text, key.text)) {
    s.fail('key', `expected the private key of tls.cert, got a key that does not match it (${key.file})`);
  }
  return { cert: cert ?? { file: '', text: '' }, key: key ?? { file: '', text: '' } };
}

/** Default public URL: the listen address, with wildcard hosts shown as loopback. */
function defaultPublicUrl(listen: HostPort, tls: boolean): string {
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `${tls ? 'https' : 'http'}://${formatHostPort({ host, port: listen.port })}`;
}

/** Validate a relay config object (parsed YAML or built in memory). Throws `ConfigErrors`. */
export function parseRelayConfig(
  obj: unknown,
  file = 'relay config',
  env: NodeJS.ProcessEnv = process.env,
  options: ParseConfigOptions = {},
): RelayConfig {
  const root = beginParse(obj, file, options, ROOT_KEYS);

  const listen = root.get('listen', hostPort, DEFAULT_RELAY_LISTEN);
  const tls = parseTls(root);
  const publicUrl = root.opt('publicUrl', url({ protocols: ['http:', 'https:'] }));

  const limits = root.section('limits', ['maxRequestBody', 'maxResponseBody', 'maxHeaderSize', 'maxStreamsPerAgent']);
  const maxRequestBody = limits.get('maxRequestBody', size(), 100 * 1024 ** 2);
  const timeouts = root.section('timeouts', ['request', 'idle', 'handshake', 'shutdownGrace', 'drainDelay']);
  const request = timeouts.get('request', duration(), 300_000);
  const idle = timeouts.get('idle', duration(), 150_000);

  if (root.has('metrics')) {
    root.fail('metrics', 'moved: metrics are served on the admin listener; set admin.listen and admin.allowFrom instead of metrics.allowFrom');
  }
  const config: RelayConfig = {
    file,
    admin: parseAdmin(root, 'relay'),
    cluster: parseCluster(root, env),
    listen,
    publicUrl: publicUrl ? stripTrailingSlash(publicUrl) : defaultPublicUrl(listen, tls !== undefined),
    baseDomain: root.opt('baseDomain', domain),
    agentPath: root.get('agentPath', endpointPath, DEFAULT_AGENT_PATH),
    tls,
    auth: parseRelayAuth(root, env),
    trustedProxies: parseCidrList(root, 'trustedProxies', new CidrList([])),
    requireDeclaredTunnels: root.get('requireDeclaredTunnels', boolean, false),
    limits: {
      maxRequestBody,
      maxResponseBody: limits.get('maxResponseBody', size(), 0),
      maxHeaderSize: limits.get('maxHeaderSize', size({ min: 1024, max: 16 * 1024 ** 2 }), 16 * 1024),
      maxStreamsPerAgent: limits.get('maxStreamsPerAgent', integer(1, 100_000), 1000),
    },
    timeouts: {
      request,
      idle,
      handshake: timeouts.get('handshake', duration(), 10_000),
      shutdownGrace: timeouts.get('shutdownGrace', duration({ min: 0 }), 30_000),
      drainDelay: timeouts.get('drainDelay', duration({ min: 0 }), root.has('cluster') ? 5_000 : 0),
    },
    heartbeat: parseHeartbeat(root),
    streamWindow: parseStreamWindow(root),
    log: parseLog(root),
    inspect: parseInspect(root),
    tunnels: parseTunnels(root, (name, tunnels) => parseRelayTunnel(name, tunnels, { maxRequestBody, request, idle }), {
      required: false,
      example: '"cioc: { kind: clienttracker }"',
    }),
  };
  return finishParse(root, config);
}
