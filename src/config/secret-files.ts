/**
 * Files that hold a secret (the agent's token, relay.yaml with `auth.secret`
 * or `cluster.secret`, private keys) must not be readable by other users:
 * like ssh and kubectl, the relay and the agent warn at start and in
 * `verify` when one is readable (or writable) by group or others on POSIX,
 * with the `chmod` to run. Windows has no such mode bits: there
 * `ctbridge agent service install` sets the ACLs (docs/windows.md).
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { AgentConfig } from './agent-config.js';
import type { LoadedText } from './files.js';
import type { RelayConfig } from './relay-config.js';
import { isPlainObject } from './schema-check.js';

export interface SecretFile {
  /** Absolute path. */
  file: string;
  /** What secret it holds, for people: `auth.secret`, `the agent token (tokenFile)`. */
  holds: string;
}

export interface ExposedSecretFile {
  file: string;
  holds: string[];
  /** Permission bits, e.g. 0o644. */
  mode: number;
  /** The bits of `mode` that are a problem (group bits are not when the process reads the file through its group). */
  exposed: number;
  /** The command that fixes it. */
  fix: string;
}

const get = (obj: unknown, ...path: (string | number)[]): unknown => {
  let v = obj;
  for (const k of path) {
    if (Array.isArray(v) && typeof k === 'number') v = v[k];
    else if (isPlainObject(v) && typeof k === 'string' && Object.hasOwn(v, k)) v = v[k];
    else return undefined;
  }
  return v;
};

const isText = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const inlinePem = (v: unknown): boolean => isText(v) && v.trimStart().startsWith('-----BEGIN');
const onDisk = (t: LoadedText | undefined): t is LoadedText => !!t && t.file !== '(inline)';

/** The files relay.yaml (`raw`, as read) and its `config` keep secrets in. */
export function relaySecretFiles(file: string, raw: unknown, config: RelayConfig): SecretFile[] {
  const self = resolve(file);
  const out: SecretFile[] = [];
  if (isText(get(raw, 'auth', 'secret'))) out.push({ file: self, holds: 'auth.secret' });
  if (inlinePem(get(raw, 'auth', 'privateKey'))) out.push({ file: self, holds: 'auth.privateKey' });
  const keys = get(raw, 'auth', 'keys');
  if (Array.isArray(keys)) {
    keys.forEach((_, i) => {
      if (isText(get(keys, i, 'secret'))) out.push({ file: self, holds: `auth.keys[${i}].secret` });
      if (inlinePem(get(keys, i, 'privateKey'))) out.push({ file: self, holds: `auth.keys[${i}].privateKey` });
    });
  }
  if (isText(get(raw, 'cluster', 'secret'))) out.push({ file: self, holds: 'cluster.secret' });
  for (const key of config.auth.keys) if (onDisk(key.privateKey)) out.push({ file: key.privateKey.file, holds: `the private key of ${key.where}` });
  if (onDisk(config.tls?.key)) out.push({ file: config.tls.key.file, holds: 'the TLS private key (tls.key)' });
  return out;
}

/** The files agent.yaml (`raw`, as read) and its `config` keep secrets in. */
export function agentSecretFiles(file: string, raw: unknown, config: AgentConfig): SecretFile[] {
  const self = resolve(file);
  const out: SecretFile[] = [];
  if (isText(get(raw, 'token'))) out.push({ file: self, holds: 'the agent token (token)' });
  const tokenFile = get(raw, 'tokenFile');
  if (config.tokenSource === 'file' && isText(tokenFile)) out.push({ file: resolve(dirname(self), tokenFile), holds: 'the agent token (tokenFile)' });
  if (config.proxy.mode === 'url' && /^[a-z]+:\/\/[^/@]*:[^/@]*@/i.test(config.proxy.url)) out.push({ file: self, holds: 'the proxy password (proxy)' });
  const passwordFile = get(raw, 'proxyAuth', 'passwordFile');
  if (config.proxyAuth?.passwordSource === 'file' && isText(passwordFile)) out.push({ file: resolve(dirname(self), passwordFile), holds: 'the proxy password (proxyAuth.passwordFile)' });
  return out;
}

/** A path as the shell needs it in a command. */
function shellPath(file: string): string {
  return /^[\w@%+=:,./-]+$/.test(file) ? file : `'${file.replace(/'/g, `'\\''`)}'`;
}

/** Who this process is, for the group rule below; undefined on Windows. */
export interface ProcessIdentity {
  uid: number;
  gid: number;
}

const self = (): ProcessIdentity | undefined =>
  process.geteuid && process.getegid ? { uid: process.geteuid(), gid: process.getegid() } : undefined;

/**
 * The secret files whose mode lets group or others read or write them
 * (POSIX); none on Windows, whose files have ACLs instead. The group bits
 * are fine when they are how this process reads the file (install.md's
 * `root:ctbridge 0640`, the service running as `ctbridge`); then the fix
 * is `chmod 640`, else `chmod 600`. A file that cannot be stat'ed is
 * skipped: reading it has already succeeded or failed.
 */
export function exposedSecretFiles(files: readonly SecretFile[], platform: NodeJS.Platform = process.platform, me: ProcessIdentity | undefined = self()): ExposedSecretFile[] {
  if (platform === 'win32') return [];
  const byFile = new Map<string, string[]>();
  for (const f of files) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f.holds]);
  const out: ExposedSecretFile[] = [];
  for (const [file, holds] of byFile) {
    let st: { mode: number; uid: number; gid: number };
    try {
      st = statSync(file);
    } catch {
      continue;
    }
    const mode = st.mode & 0o777;
    const viaGroup = me !== undefined && st.uid !== me.uid && st.gid === me.gid;
    const exposed = viaGroup ? mode & 0o027 : mode & 0o077;
    if (exposed !== 0) out.push({ file, holds, mode, exposed, fix: `chmod ${viaGroup ? '640' : '600'} ${shellPath(file)}` });
  }
  return out;
}

/** `0644: readable by group and others` */
export function describeMode(mode: number, bits = mode & 0o077): string {
  const who = [(bits & 0o070) !== 0 && 'group', (bits & 0o007) !== 0 && 'others'].filter(Boolean).join(' and ');
  const what = [(bits & 0o044) !== 0 && 'readable', (bits & 0o022) !== 0 && 'writable'].filter(Boolean).join(' and ') || 'accessible';
  return `mode ${mode.toString(8).padStart(4, '0')}: ${what} by ${who}`;
}

/** One line for people: what is exposed, and the command that fixes it. */
export function exposureText(e: ExposedSecretFile): string {
  return `${e.file} holds ${e.holds.join(', ')} and is ${describeMode(e.mode, e.exposed).replace(/^mode (\d+): /, '$1, ')}; run: ${e.fix}`;
}

/** What `verify` says on Windows, where no mode bits are checked. */
export const WINDOWS_SECRET_NOTE =
  'file permissions are not checked on Windows: `ctbridge agent service install` limits the config folder and agent.yaml to SYSTEM, Administrators and the service account (icacls); keep a tokenFile or key file in that folder (docs/windows.md)';
