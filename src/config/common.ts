/**
 * Config sections and rules shared by relay.yaml and agent.yaml: log level,
 * heartbeat, stream window, tunnel maps, path allow-lists, CIDR lists, and
 * the final deep freeze.
 */
import { dirname, resolve } from 'node:path';
import { Problems, Section, isPlainObject } from './schema-check.js';
import { CidrList, ValueError, formatDuration, formatValue, parseCidr, parseHostPort, type HostPort } from './units.js';
import { allowPath, domain, duration, oneOf, size, tunnelName } from './values.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogConfig {
  readonly level: LogLevel;
  /**
   * Extra query parameter and header names whose values are logged as
   * [REDACTED], on top of the built-in list (src/redact.ts); lower case.
   */
  readonly redact: readonly string[];
}

export interface HeartbeatConfig {
  /** ms between pings. */
  readonly interval: number;
  /** ms without any frame before the connection is considered dead. */
  readonly timeout: number;
}

/** Default flow-control window per stream, and its bounds. */
export const STREAM_WINDOW = { default: 256 * 1024, min: 16 * 1024, max: 16 * 1024 * 1024 } as const;

export const DEFAULT_AGENT_PATH = '/_ctbridge/agent';

/** Default admin listeners: the relay's and the agent's, on loopback. */
export const DEFAULT_ADMIN_PORT = { relay: 9090, agent: 9091 } as const;

/**
 * When `admin.listen` is not set and the default port is taken (a second
 * agent on the host, the new version beside the old one), the first free
 * port of these (docs/operating.md). Not for an `admin.listen` that is set.
 */
export const ADMIN_FALLBACK_PORTS = {
  relay: [9081, 9082, 9083, 9084, 9085, 9086, 9087, 9088, 9089],
  agent: [9092, 9093, 9094, 9095, 9096, 9097, 9098, 9099],
} as const;

/**
 * For tests only: CTBRIDGE_TEST_ADMIN_PORTS=40100-40108 replaces the default
 * port (the first) and its fallback ports (the others), so tests of the
 * fallback do not depend on 9090-9099 being free on the machine.
 */
export function defaultAdminPorts(role: 'relay' | 'agent', env: NodeJS.ProcessEnv = process.env): { port: number; fallback: readonly number[] } {
  const m = /^(\d+)-(\d+)$/.exec(env.CTBRIDGE_TEST_ADMIN_PORTS ?? '');
  if (m && Number(m[1]) < Number(m[2]) && Number(m[2]) - Number(m[1]) < 100 && Number(m[2]) < 65536) {
    const first = Number(m[1]);
    return { port: first, fallback: Array.from({ length: Number(m[2]) - first }, (_, i) => first + 1 + i) };
  }
  return { port: DEFAULT_ADMIN_PORT[role], fallback: ADMIN_FALLBACK_PORTS[role] };
}
const LOOPBACK = new CidrList(['127.0.0.0/8', '::1/128']);

export interface AdminConfig {
  /** host:port of the admin listener (health, readiness, metrics, status, reload); undefined: off. */
  readonly listen: HostPort | undefined;
  /** admin.listen not set: the ports to try, in order, when the default one is taken (ADMIN_FALLBACK_PORTS); else empty. */
  readonly fallbackPorts: readonly number[];
  /** Who may use it (default loopback only). */
  readonly allowFrom: CidrList;
  /**
   * Host names requests may name in `Host` besides IP literals and
   * `localhost` (lower case); others get 421 (DNS rebinding).
   */
  readonly hosts: readonly string[];
}

export interface ParseConfigOptions {
  /** Directory relative file paths resolve against (default: the config file's directory). */
  baseDir?: string;
}

/** Start a pass over a config object: its problems and root section. */
export function beginParse(obj: unknown, file: string, options: ParseConfigOptions, rootKeys: readonly string[]): Section {
  const problems = new Problems(file, options.baseDir ?? dirname(resolve(file)));
  const root = new Section(problems, '', obj, rootKeys);
  // Nothing else is worth saying about a file that is not a mapping.
  if (obj !== undefined && obj !== null && !isPlainObject(obj)) problems.throwIfAny();
  return root;
}

/** End a pass: throw every problem found, or return the config deeply frozen. */
export function finishParse<T>(root: Section, config: T): T {
  root.problems.throwIfAny();
  return deepFreeze(config);
}

/** A name for log.redact: an HTTP token (header names are tokens; so are sane query parameter names). */
const redactName = (v: unknown): string => {
  if (typeof v === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/.test(v)) return v.toLowerCase();
  throw new ValueError(`expected a query parameter or header name such as "x-api-key" (letters, digits and !#$%&'*+.^_\`|~-), got ${formatValue(v)}`);
};

/** `admin:` — the admin listener, separate from any public port. `listen: off` turns it off. */
export function parseAdmin(root: Section, role: 'relay' | 'agent'): AdminConfig {
  const s = root.section('admin', ['listen', 'allowFrom', 'hosts']);
  const defaults = defaultAdminPorts(role);
  const set = s.has('listen');
  const listen = s.value('listen') === 'off' ? undefined : s.get('listen', hostPort, { host: '127.0.0.1', port: defaults.port });
  return { listen, fallbackPorts: set ? [] : defaults.fallback, allowFrom: parseCidrList(s, 'allowFrom', LOOPBACK), hosts: s.list('hosts', domain, '["status.corp.example"]') ?? [] };
}

export function parseLog(root: Section): LogConfig {
  const s = root.section('log', ['level', 'redact']);
  return {
    level: s.get('level', oneOf(LOG_LEVELS), 'info'),
    redact: [...new Set(s.list('redact', redactName, '["x-api-key", "session"]') ?? [])],
  };
}

/** Heartbeat defaults: docs/performance.md, "Fleet scale", says what they cost and why. */
// 30 s / 60 s: the relay's idle cost is its pongs, 25% less than with 20 s / 45 s (issue 13's 3% of a core at 15,000
// agents); the relay still pings a link silent for 1.5 intervals and gives it 15 s to answer, as before.
export const HEARTBEAT_DEFAULTS: HeartbeatConfig = Object.freeze({ interval: 30_000, timeout: 60_000 });

export function parseHeartbeat(root: Section): HeartbeatConfig {
  const s = root.section('heartbeat', ['interval', 'timeout']);
  const interval = s.get('interval', duration(), HEARTBEAT_DEFAULTS.interval);
  const timeout = s.get('timeout', duration(), HEARTBEAT_DEFAULTS.timeout);
  if (timeout <= interval) {
    s.fail('timeout', `expected a duration longer than heartbeat.interval (${formatDuration(interval)}), got ${formatDuration(timeout)}`);
  }
  return { interval, timeout };
}

export function parseStreamWindow(root: Section): number {
  return root.get('streamWindow', size({ min: STREAM_WINDOW.min, max: STREAM_WINDOW.max }), STREAM_WINDOW.default);
}

/** `host:port` (IPv6 as `[::1]:8080`). */
export const hostPort = (v: unknown): HostPort => parseHostPort(v);

/** `allowPaths`: undefined when absent (everything allowed). */
export function parseAllowPaths(s: Section): readonly string[] | undefined {
  return s.list('allowPaths', allowPath, '["/ct/ctregister.asp", "/api/"]');
}

/** A list of CIDRs; `def` when absent. */
export function parseCidrList(s: Section, key: string, def: CidrList): CidrList;
export function parseCidrList(s: Section, key: string): CidrList | undefined;
export function parseCidrList(s: Section, key: string, def?: CidrList): CidrList | undefined {
  const cidrs = s.list(key, parseCidr, '["10.0.0.0/8", "2001:db8::/32"]');
  return cidrs === undefined ? def : new CidrList(cidrs);
}

/**
 * `tunnels:` — a map of DNS-label names to sections parsed by `parseOne`.
 * Returns a null-prototype record so names like "constructor" look up safely.
 */
export function parseTunnels<T>(
  root: Section,
  parseOne: (name: string, tunnels: Section) => T,
  options: { required: boolean; example: string },
): Record<string, T> {
  const tunnels = root.section('tunnels', null);
  const out = Object.create(null) as Record<string, T>;
  const names = tunnels.names();
  if (options.required && names.length === 0 && !root.problems.errors.some((e) => e.key === 'tunnels')) {
    root.fail('tunnels', `missing; expected at least one tunnel, such as ${options.example}`);
  }
  for (const name of names) {
    if (tunnels.check(tunnels.key(name), name, tunnelName) === undefined) continue;
    out[name] = parseOne(name, tunnels);
  }
  return out;
}

/** Freeze plain objects and arrays recursively (class instances such as CidrList freeze themselves). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      Object.freeze(value);
      for (const child of Object.values(value)) deepFreeze(child);
    }
  }
  return value;
}
