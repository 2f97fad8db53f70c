/**
 * Value syntaxes used in config files and on the command line: durations,
 * sizes, host:port pairs and CIDR ranges. Parsers throw `ValueError` whose
 * message says what was expected and echoes what was given (never pass a
 * secret to them); the config layer prefixes file and key.
 */
import { BlockList, isIP } from 'node:net';

/** A value that does not have the expected syntax or range. */
export class ValueError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

/** Largest delay `setTimeout` honours (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Upper bound for config durations used as timers: 24d, a round value below MAX_TIMER_MS. */
export const MAX_CONFIG_DURATION_MS = 24 * 86_400_000;

/** Short, safe description of a config value for "got ..." in messages. */
export function formatValue(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (typeof value === 'string') {
    const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping';
  return `a ${typeof value}`;
}

// ---------------------------------------------------------------- durations

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type DurationUnit = keyof typeof DURATION_UNITS;
const DURATION_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)$/;
export const DURATION_EXPECTED = 'a duration such as "30s", "500ms", "2m"';

/** `"500ms"`, `"30s"`, `"1.5s"`, `"2m"`, `"1h"`, `"365d"` → milliseconds (rounded). */
export function parseDuration(value: unknown): number {
  const m = typeof value === 'string' ? DURATION_RE.exec(value.trim()) : null;
  if (!m) throw new ValueError(`expected ${DURATION_EXPECTED}, got ${formatValue(value)}`);
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2] as DurationUnit]);
  if (!Number.isSafeInteger(ms)) throw new ValueError(`expected ${DURATION_EXPECTED}, got ${formatValue(value)} (too large)`);
  return ms;
}

/** Milliseconds → the shortest string `parseDuration` reads back to the same value. */
export function formatDuration(ms: number): string {
  const n = Math.round(Math.abs(ms));
  const sign = ms < 0 && n !== 0 ? '-' : '';
  if (n === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (n % DURATION_UNITS[unit] === 0) return `${sign}${n / DURATION_UNITS[unit]}${unit}`;
  }
  return n > 1000 ? `${sign}${n / 1000}s` : `${sign}${n}ms`;
}

// -------------------------------------------------------------------- sizes

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};
const SIZE_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*(b|kb|mb|gb|kib|mib|gib)?$/i;
export const SIZE_EXPECTED = 'a size such as "256KiB", "1MB", "100MiB" or a number of bytes';

/** `"256KiB"`, `"1MB"`, `"1.5MiB"`, `"1024"` or `1024` → bytes (rounded). KB = 1000, KiB = 1024. */
export function parseSize(value: unknown): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new ValueError(`expected ${SIZE_EXPECTED}, got ${formatValue(value)}`);
  }
  const m = typeof value === 'string' ? SIZE_RE.exec(value.trim()) : null;
  if (!m || (m[2] === undefined && m[1].includes('.'))) {
    throw new ValueError(`expected ${SIZE_EXPECTED}, got ${formatValue(value)}`);
  }
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new ValueError(`expected ${SIZE_EXPECTED}, got ${formatValue(value)} (too large)`);
  return bytes;
}

/** Bytes → `"256KiB"`, `"100MiB"`, `"1GiB"` when exact, else `"1500B"`. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

// ---------------------------------------------------------------- host:port

export interface HostPort {
  /** Host name or IP address; IPv6 without brackets. */
  readonly host: string;
  /** 0-65535; 0 asks the OS for a free port. */
  readonly port: number;
}

const HOST_LABEL = '[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?';
const HOSTNAME_RE = new RegExp(`^(?=.{1,253}$)${HOST_LABEL}(\\.${HOST_LABEL})*$`, 'i');

/** True for an IPv4 address or a DNS host name (not IPv6: bracket those). */
export function isHostname(host: string): boolean {
  return isIP(host) === 4 || HOSTNAME_RE.test(host);
}

const HOSTPORT_EXPECTED = 'host:port such as "127.0.0.1:8080" or "[::1]:8080"';

/**
 * `"127.0.0.1:8080"`, `"localhost:0"`, `"[::1]:8080"` → `{ host, port }`.
 * With `portOptional`, a bare host (`"example.com"`, `"[::1]"`) is accepted and `port` is undefined.
 */
export function parseHostPort(value: unknown): HostPort;
export function parseHostPort(value: unknown, options: { portOptional: true }): { host: string; port: number | undefined };
export function parseHostPort(value: unknown, options?: { portOptional: true }): { host: string; port: number | undefined } {
  const expected = options?.portOptional ? 'host or host:port such as "intranet.example:8080"' : HOSTPORT_EXPECTED;
  const fail = (): never => {
    throw new ValueError(`expected ${expected}, got ${formatValue(value)}`);
  };
  if (typeof value !== 'string') return fail();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(value);
  if (!m) return fail();
  const [, host, portText] = m;
  const bracketed = value.startsWith('[');
  if (bracketed ? isIP(host) !== 6 : !isHostname(host)) return fail();
  if (portText === undefined) return options?.portOptional ? { host, port: undefined } : fail();
  const port = Number(portText);
  if (port > 65535) return fail();
  return { host, port };
}

/** `{ host: '::1', port: 8080 }` → `"[::1]:8080"`. */
export function formatHostPort(hp: { host: string; port?: number | undefined }): string {
  const host = isIP(hp.host) === 6 ? `[${hp.host}]` : hp.host;
  return hp.port === undefined ? host : `${host}:${hp.port}`;
}

// -------------------------------------------------------------------- CIDRs

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
  /** `address/prefix`, as written (address lower-cased). */
  readonly text: string;
}

export const CIDR_EXPECTED = 'a CIDR such as "198.51.100.0/24", "2001:db8::/32" or an IP address';

/** `"198.51.100.0/24"`, `"::1/128"`, or a bare address (= /32 or /128). */
export function parseCidr(value: unknown): Cidr {
  const fail = (): never => {
    throw new ValueError(`expected ${CIDR_EXPECTED}, got ${formatValue(value)}`);
  };
  if (typeof value !== 'string') return fail();
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(value.trim());
  if (!m) return fail();
  const address = m[1].toLowerCase();
  const version = isIP(address);
  if (version === 0) return fail();
  const max = version === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return fail();
  return Object.freeze({ address, prefix, family: version === 4 ? 'ipv4' : 'ipv6', text: `${address}/${prefix}` });
}

/**
 * A set of CIDR ranges with a membership test. IPv4 addresses match IPv6 ranges
 * written as IPv4-mapped (`::ffff:10.0.0.0/104`) and IPv4-mapped IPv6 addresses
 * (`::ffff:10.1.2.3`, as Node reports IPv4 peers on dual-stack sockets) match
 * IPv4 ranges. Instances are frozen.
 */
export class CidrList {
  readonly entries: readonly Cidr[];
  readonly #list = new BlockList();

  constructor(cidrs: Iterable<Cidr | string>) {
    const entries = [...cidrs].map((c) => (typeof c === 'string' ? parseCidr(c) : c));
    for (const c of entries) this.#list.addSubnet(c.address, c.prefix, c.family);
    this.entries = Object.freeze(entries);
    Object.freeze(this);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Whether `ip` (IPv4, IPv6, `[v6]`, `v6%zone`) is in one of the ranges; false for anything else. */
  contains(ip: string): boolean {
    let addr = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
    const zone = addr.indexOf('%');
    if (zone !== -1) addr = addr.slice(0, zone);
    const version = isIP(addr);
    if (version === 0 || this.entries.length === 0) return false;
    return this.#list.check(addr, version === 4 ? 'ipv4' : 'ipv6');
  }

  toJSON(): string[] {
    return this.entries.map((c) => c.text);
  }

  toString(): string {
    return this.toJSON().join(', ');
  }
}
