/**
 * A real load balancer in front of relay nodes (Debian's HAProxy, installed
 * by .ci/run): round robin, health checks on each node's admin /readyz,
 * retries of failed connections on another node. What an operator would
 * put in front of a relay cluster (docs/cluster.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../cli/demo/free-port.js';
import { tempDir } from './processes.js';

export interface LbServer {
  name: string;
  port: number;
  adminPort: number;
}

export interface LoadBalancer {
  url: string;
  port: number;
  /** What HAProxy printed (servers going DOWN and UP, alerts): shown when a test fails. */
  output(): string;
  close(): Promise<void>;
}

export function haproxyAvailable(): boolean {
  return spawnSync('haproxy', ['-v']).status === 0;
}

export function haproxyConfig(port: number, servers: readonly LbServer[]): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  timeout http-keep-alive 5s',
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    'frontend public',
    `  bind 127.0.0.1:${port}`,
    '  default_backend relays',
    'backend relays',
    '  balance roundrobin',
    '  option httpchk',
    '  http-check send meth GET uri /readyz',
    '  default-server inter 250ms fall 1 rise 2',
    ...servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check port ${s.adminPort}`),
    '',
  ].join('\n');
}

export async function startHaproxy(servers: readonly LbServer[]): Promise<LoadBalancer> {
  const port = await freePort();
  const conf = join(tempDir(), 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(port, servers));
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Listening: the port accepts connections.
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    output: () => output,
    close: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
