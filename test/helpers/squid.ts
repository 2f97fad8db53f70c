/**
 * A real Squid (Debian's squid, installed by .ci/run) as the corporate
 * forward proxy: proxy authentication by NTLM (its ntlm_fake_auth helper runs
 * the full three-message handshake and accepts any password), Basic
 * (basic_ncsa_auth with a generated password file), or both; caching off; only
 * CONNECT to the given ports allowed. Started in the foreground (-N) with its
 * own config, pid, log and cache directories under a temp dir, on loopback.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './ports.js';
import type { ForwardProxy } from './tinyproxy.js';

const NTLM_HELPER = '/usr/lib/squid/ntlm_fake_auth';
const BASIC_HELPER = '/usr/lib/squid/basic_ncsa_auth';

export interface SquidOptions {
  /** Proxy-Authenticate schemes to offer, in order. */
  auth: ('ntlm' | 'basic')[];
  /** Basic user and password (basic_ncsa_auth, SHA1 entry). */
  basic?: { user: string; pass: string };
  /** Ports CONNECT may reach (the relay's). */
  connectPorts: number[];
}

/** An htpasswd line basic_ncsa_auth reads (MD5-crypt; it does not take {SHA}). */
function htpasswd(user: string, pass: string): string {
  const hashed = spawnSync('openssl', ['passwd', '-1', '-stdin'], { input: pass, encoding: 'utf8' });
  if (hashed.status !== 0) throw new Error(`openssl passwd failed: ${hashed.stderr}`);
  return `${user}:${hashed.stdout.trim()}\n`;
}

/** `executable`: Squid's (test/helpers/system.ts needs('squid').path). */
export async function startSquid(options: SquidOptions, executable = 'squid'): Promise<ForwardProxy & { accessLog: () => string }> {
  const [port] = await freePorts(1);
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-squid-'));
  // Squid started as root switches to its cache_effective_user: let it write its files.
  chmodSync(dir, 0o777);
  const lines = [
    `http_port 127.0.0.1:${port}`,
    `pid_filename ${join(dir, 'squid.pid')}`,
    `cache_log ${join(dir, 'cache.log')}`,
    `access_log stdio:${join(dir, 'access.log')}`,
    'cache_store_log none',
    `coredump_dir ${dir}`,
    'cache deny all',
    'cache_mem 8 MB',
    'shutdown_lifetime 0 seconds',
    'dns_v4_first on',
    'via on',
    'pinger_enable off',
  ];
  for (const scheme of options.auth) {
    if (scheme === 'ntlm') {
      lines.push(`auth_param ntlm program ${NTLM_HELPER}`, 'auth_param ntlm children 2 startup=1 idle=1', 'auth_param ntlm keep_alive on');
    } else {
      const file = join(dir, 'passwd');
      writeFileSync(file, htpasswd(options.basic?.user ?? 'corp', options.basic?.pass ?? 'pass'));
      chmodSync(file, 0o644);
      lines.push(`auth_param basic program ${BASIC_HELPER} ${file}`, 'auth_param basic children 2 startup=1 idle=1', 'auth_param basic realm corp');
    }
  }
  lines.push(
    'acl localhost src 127.0.0.1/32',
    `acl relay_ports port ${options.connectPorts.join(' ')}`,
    'acl CONNECT method CONNECT',
    'http_access deny CONNECT !relay_ports',
    ...(options.auth.length ? ['acl authed proxy_auth REQUIRED', 'http_access deny !authed'] : []),
    'http_access allow localhost',
    'http_access deny all',
    '',
  );
  const conf = join(dir, 'squid.conf');
  writeFileSync(conf, lines.join('\n'));
  const child = spawn(executable, ['-N', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const cacheLog = () => (existsSync(join(dir, 'cache.log')) ? readFileSync(join(dir, 'cache.log'), 'utf8') : '');
  const onData = (c: Buffer): void => void (output += c.toString());
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  // Squid says "Accepting HTTP Socket connections" in its cache.log; wait for the port to accept instead (bounded).
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`squid exited with ${code}: ${output}${cacheLog()}`))));
  exited.catch(() => undefined);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await Promise.race([probe(port), exited]);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`squid did not accept connections within 20 s: ${output}${cacheLog()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => output + cacheLog(),
    accessLog: () => (existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8') : ''),
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
    },
  };
}

async function probe(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
