/**
 * A real load balancer in front of relay nodes (Debian's HAProxy, installed
 * by .ci/run): round robin, health checks on each node's admin /readyz,
 * retries of failed connections on another node. What an operator would
 * put in front of a relay cluster (docs/cluster.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../cli/demo/free-port.js';
import { haproxyConfig, type LbServer } from './haproxy-config.js';
import { tempDir } from './processes.js';

export type { LbServer };

export interface LoadBalancer {
  url: string;
  port: number;
  /** What HAProxy printed (servers going DOWN and UP, alerts): shown when a test fails. */
  output(): string;
  close(): Promise<void>;
}

/** `executable`: the haproxy to run (needs('haproxy', ...).path in a test file). */
export async function startHaproxy(servers: readonly LbServer[], executable = 'haproxy'): Promise<LoadBalancer> {
  const port = await freePort();
  const conf = join(tempDir(), 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(port, servers));
  const child: ChildProcess = spawn(executable, ['-db', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
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
