/**
 * Talking to a running relay's or agent's admin listener from the command
 * line (`ctbridge status`, `reload`, `tail`, `replay`): where it is (from the
 * config's `admin.listen`, or `--admin`), and one request to it, with a
 * message that says what to check when it cannot be reached.
 *
 * With `admin.listen` not set, the process took the default port or, when
 * that was taken, the first free one of its fallback ports
 * (ADMIN_FALLBACK_PORTS): `findAdminTarget` asks each of them which config
 * file it runs with, and picks the one that runs with this file.
 */
import { realpathSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { ADMIN_FALLBACK_PORTS, DEFAULT_ADMIN_PORT, formatHostPort, readConfigFile } from '../src/config/index.js';
import { beginParse, parseAdmin } from '../src/config/common.js';
import { isPlainObject } from '../src/config/schema-check.js';
import { ADMIN_HEADER } from '../src/admin/guard.js';
import { ConfigError } from '../src/errors.js';

export type Role = 'relay' | 'agent';

/** The options every admin command takes to find the process to ask. */
export interface AdminTargetOptions {
  config?: string | undefined;
  admin?: string | undefined;
  role?: Role | undefined;
}

export interface AdminTarget {
  /** Base URL, no trailing slash: http://127.0.0.1:9090 */
  url: string;
  /** The process kind when known (from the config file, or the command). */
  role: Role | undefined;
  /** The config file it came from, if any. */
  file: string | undefined;
  /** admin.listen not set in `file`: the fallback ports' URLs, where the process may be instead (findAdminTarget). */
  fallbacks?: readonly string[];
}

/** Who runs the admin listener, for messages: "the relay", "the agent", "the ctbridge process". */
export const whose = (role: Role | undefined): string => (role ? `the ${role}` : 'the ctbridge process');

/** An agent.yaml names its relay (`relay:`); a relay.yaml never has that key. */
export function roleOfConfig(obj: unknown): Role {
  return isPlainObject(obj) && Object.hasOwn(obj, 'relay') ? 'agent' : 'relay';
}

/**
 * A listen address as a place to connect to: a wildcard address (0.0.0.0,
 * ::) listens on loopback too, so ask there.
 */
export function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '::0') return '::1';
  return host;
}

/**
 * Where the admin listener of the process run with `file` is. Reads only
 * the `admin:` section (with the same rules and defaults the process
 * applies), so no secret or token needs to be at hand. `role` forces relay
 * or agent defaults; otherwise the file's keys tell.
 */
export function adminTargetFromConfig(file: string, role?: Role): AdminTarget {
  const obj = readConfigFile(file);
  const kind = role ?? roleOfConfig(obj);
  const root = beginParse(isPlainObject(obj) ? { admin: obj.admin } : obj, file, {}, ['admin']);
  const admin = parseAdmin(root, kind);
  root.problems.throwIfAny();
  if (!admin.listen) {
    throw new ConfigError(file, 'admin.listen', `is off, so ${whose(kind)} has no admin listener to ask; set it (default 127.0.0.1:${DEFAULT_ADMIN_PORT[kind]}) and restart ${whose(kind)}`);
  }
  if (admin.listen.port === 0) {
    throw new ConfigError(file, 'admin.listen', `has port 0 (any free port), so only ${whose(kind)}'s log line "admin listening" says where it is; pass that address with --admin http://host:port`);
  }
  const url = (port: number): string => `http://${formatHostPort({ host: connectHost(admin.listen!.host), port })}`;
  return { url: url(admin.listen.port), role: kind, file, fallbacks: admin.fallbackPorts.map(url) };
}

/** `--admin http://127.0.0.1:9090`, `--admin 127.0.0.1:9090` or `--admin [::1]:9091`. */
export function adminTargetFromOption(value: string, role?: Role): AdminTarget {
  const text = value.trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new ConfigError('--admin', '', `expected the admin listener's address such as http://127.0.0.1:9090, got "${text}"`);
  }
  if (url.protocol !== 'http:' || !url.port || (url.pathname !== '/' && url.pathname !== '')) {
    throw new ConfigError('--admin', '', `expected http://host:port (the admin listener speaks plain HTTP; no path), got "${text}"`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { url: `http://${formatHostPort({ host: connectHost(host), port: Number(url.port) })}`, role, file: undefined };
}

export interface AdminAnswer {
  status: number;
  body: string;
}

/** The admin listener could not be asked (not running, wrong address, refused, timed out). */
export class AdminUnreachable extends Error {
  constructor(
    readonly target: AdminTarget,
    readonly reason: string,
  ) {
    super(`cannot reach ${whose(target.role)}'s admin listener at ${target.url} (${reason})`);
  }

  /** What to check, for a person. */
  get advice(): string {
    const { role, file } = this.target;
    const where = file ? ` in ${file}` : role ? ` in its ${role}.yaml` : ' in its relay.yaml or agent.yaml';
    const def = role ? ` (default 127.0.0.1:${DEFAULT_ADMIN_PORT[role]}, or when that was taken the first free of ports ${ADMIN_FALLBACK_PORTS[role][0]}-${ADMIN_FALLBACK_PORTS[role].at(-1)})` : '';
    const unit = role ? ` (e.g. systemctl status ctbridge-${role}; on Windows, the ctbridge-${role} service)` : '';
    return [
      `Check that:`,
      `  - ${whose(role)} is running${unit};`,
      `  - admin.listen${where} is the address it listens on${def}; it was read when ${whose(role)} started, so a change needs a restart;`,
      `  - admin.allowFrom${where} lists this machine's address, if you ask from another machine (default: loopback only).`,
    ].join('\n');
  }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EADDRNOTAVAIL: 'address not available on this machine',
};

/** One request to the admin listener; rejects with AdminUnreachable when there is no HTTP answer. */
export function adminRequest(target: AdminTarget, method: 'GET' | 'POST', path: string, timeoutMs = 10_000): Promise<AdminAnswer> {
  const url = new URL(path, `${target.url}/`);
  return new Promise((resolve, reject) => {
    // X-Ctbridge-Admin: what a state-changing request must carry (src/admin/guard.ts).
    const headers = { accept: 'application/json', [ADMIN_HEADER]: '1' };
    const req = http.request(url, { method, agent: false, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(new AdminUnreachable(target, err.message)));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new AdminUnreachable(target, (err.code && REASONS[err.code]) ?? err.message)));
    req.end();
  });
}

/**
 * What an answer other than 200 means, for a person: the listener refused
 * this address (403), or what answers is not a ctbridge admin listener.
 */
export function unexpectedAnswer(target: AdminTarget, path: string, answer: AdminAnswer): string {
  const where = target.file ? ` in ${target.file}` : '';
  if (answer.status === 421) {
    return `${whose(target.role)}'s admin listener at ${target.url} refused the host name asked for (421): use its IP address or localhost in --admin, or add the name to admin.hosts${where}`;
  }
  if (answer.status === 403) {
    return `${whose(target.role)}'s admin listener at ${target.url} refused this address (403): add it to admin.allowFrom${where}, or run this command on the machine of ${whose(target.role)}`;
  }
  return `${target.url}${path} answered HTTP ${answer.status}, not what a ctbridge admin listener answers: is admin.listen${where} the address of ${whose(target.role)}'s admin listener, not its public port or another service?`;
}

/** The same file, however named (relative, through a symbolic link). */
function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}

/** What the process at `url` says it is: its role and absolute config file, or undefined (nothing there, or not a ctbridge admin listener). */
async function whoIsAt(target: AdminTarget, url: string): Promise<{ role: unknown; config: unknown } | undefined> {
  try {
    const answer = await adminRequest({ ...target, url }, 'GET', '/api/status', 3_000);
    if (answer.status !== 200) return undefined;
    const v = JSON.parse(answer.body) as { role?: unknown; config?: unknown } | null;
    return typeof v === 'object' && v !== null ? { role: v.role, config: v.config } : undefined;
  } catch {
    return undefined;
  }
}

export interface FoundTarget {
  target: AdminTarget;
  /** Other admin listeners of processes that run with the same config file (say so: --admin picks one). */
  others: string[];
}

/**
 * `adminTarget`, and for a config without admin.listen: the listener, on
 * the default port or a fallback port, of the process that runs with this
 * config file (its /api/status names the file). None does (not running,
 * or an older version that does not say): the default port, as before.
 */
export async function findAdminTarget(opts: AdminTargetOptions): Promise<FoundTarget> {
  const target = adminTarget(opts);
  if (!target.file || !target.fallbacks?.length) return { target, others: [] };
  const urls = [target.url, ...target.fallbacks];
  const who = await Promise.all(urls.map((url) => whoIsAt(target, url)));
  const mine = urls.filter((_, i) => who[i]?.role === target.role && typeof who[i]?.config === 'string' && samePath(who[i]!.config as string, target.file!));
  if (mine.length === 0) return { target, others: [] };
  return { target: { ...target, url: mine[0]! }, others: mine.slice(1) };
}

/** The line that says a second process runs with the same config, if one does. */
export function othersNote(found: FoundTarget): string {
  if (found.others.length === 0) return '';
  return `ctbridge: note: another process also runs with ${found.target.file}, at ${found.others.join(', ')}; this is ${found.target.url} (--admin chooses)\n`;
}

/** The target from the command's options; `--admin` wins over `--config`. */
export function adminTarget(opts: AdminTargetOptions): AdminTarget {
  if (opts.admin) return adminTargetFromOption(opts.admin, opts.role);
  if (opts.config) return adminTargetFromConfig(opts.config, opts.role);
  throw new ConfigError('--config', '', 'give the relay.yaml or agent.yaml of the process to ask (--config), or its admin listener (--admin http://host:port)');
}
