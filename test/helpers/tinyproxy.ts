/**
 * A real forward proxy (Debian's tinyproxy: test/helpers/system.ts needs()) with Basic
 * proxy authentication, on loopback.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './processes.js';
import { freePort } from '../../cli/demo/free-port.js';

export interface ForwardProxy {
  url: string;
  port: number;
  /** CONNECT requests the proxy logged. */
  log: () => string;
  close(): Promise<void>;
}

/** `executable`: the tinyproxy to run (needs('tinyproxy', ...).path in a test file). */
export async function startTinyproxy(user: string, pass: string, executable = 'tinyproxy'): Promise<ForwardProxy> {
  const port = await freePort();
  const dir = tempDir();
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'LogLevel Info', 'MaxClients 200', 'Allow 127.0.0.1', `BasicAuth ${user} ${pass}`, 'DisableViaHeader Yes', ''].join('\n'),
  );
  const child = spawn(executable, ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer): void => {
      output += c.toString();
      if (output.includes('Accepting connections')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tinyproxy exited with ${code}: ${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => output,
    close: async () => {
      // Once killed, exitCode stays null (signalCode is set): waiting for another 'exit' would hang.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
