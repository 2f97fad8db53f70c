/**
 * `ctbridge agent service <install|uninstall|start|stop|status> --config <agent.yaml> [--dry-run]`:
 * the agent as a Windows service (WinSW, service/windows.ts) or a systemd
 * service (service/systemd.ts). --dry-run prints the files and commands
 * without touching anything; --platform shows the other system's plan.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix, win32 } from 'node:path';
import { loadAgentConfig } from '../../src/config/index.js';
import { packageRoot, readAsset, runningSea } from '../../src/assets.js';
import { describeStep, quoteArg, type CommandLine, type ServiceAction, type ServicePlan, type Step } from './plan.js';
import { SERVICE_USER, systemdServicePlan } from './systemd.js';
import { windowsServicePlan } from './windows.js';

export { SERVICE_ACTIONS, type ServiceAction } from './plan.js';

export type ServicePlatform = 'windows' | 'linux';
const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;
const UNIT_TEMPLATE_ASSET = 'deploy/ctbridge-agent.service';

export interface ServiceArgs {
  action: ServiceAction;
  config: string;
  dryRun: boolean;
  platform?: ServicePlatform;
}

export interface ServiceIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: ServiceIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** What the service runs: this executable (a single executable), or node with this package's bin/ctbridge.js. */
export function currentCommandLine(): CommandLine {
  if (runningSea()) return { executable: process.execPath, prefixArgs: [] };
  return { executable: process.execPath, prefixArgs: [join(packageRoot(), 'bin', 'ctbridge.js')] };
}

/** KEY=VALUE lines of an environment file (systemd's EnvironmentFile=), for checking the config as the service will see it. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return env;
}

export async function serviceCommand(args: ServiceArgs, io: ServiceIo = processIo): Promise<number> {
  const platform: ServicePlatform = args.platform ?? (process.platform === 'win32' ? 'windows' : 'linux');
  const path = platform === 'windows' ? win32 : posix;
  const configPath = path.resolve(args.config);
  const notes: string[] = [];

  let shutdownGraceMs = DEFAULT_SHUTDOWN_GRACE_MS;
  if (args.action === 'install') {
    if (existsSync(configPath) || !args.dryRun) {
      // The service would fail at every start with a config that does not
      // load: check it first, with the token from agent.env as systemd passes it.
      const envFile = path.join(path.dirname(configPath), 'agent.env');
      const env = platform === 'linux' && existsSync(envFile) ? { ...process.env, ...parseEnvFile(readFileSync(envFile, 'utf8')) } : process.env;
      shutdownGraceMs = loadAgentConfig(configPath, env).timeouts.shutdownGrace;
    } else {
      notes.push(`(${configPath} does not exist here: assumed timeouts.shutdownGrace ${DEFAULT_SHUTDOWN_GRACE_MS / 1000}s)`);
    }
  }

  const command = currentCommandLine();
  const plan: ServicePlan =
    platform === 'windows'
      ? windowsServicePlan(args.action, { configPath, command, shutdownGraceMs })
      : systemdServicePlan(args.action, {
          configPath,
          command,
          shutdownGraceMs,
          template: readAsset(UNIT_TEMPLATE_ASSET).toString('utf8'),
          userExists: args.dryRun && process.platform !== 'linux' ? true : userExists(SERVICE_USER),
        });

  if (args.dryRun) {
    io.out(`# ctbridge agent service ${args.action} (${platform}), dry run: nothing is changed.\n`);
    for (const step of plan.steps) io.out(`${describeStep(step)}\n`);
    for (const note of [...notes, ...plan.notes]) io.out(`# ${note}\n`);
    return 0;
  }

  if (platform !== (process.platform === 'win32' ? 'windows' : 'linux')) {
    io.err(`ctbridge: --platform ${platform} is for --dry-run on another system\n`);
    return 2;
  }
  if (platform === 'linux' && args.action !== 'status' && process.getuid?.() !== 0) {
    io.err(`ctbridge: agent service ${args.action} changes systemd: run it as root (sudo).\n`);
    return 2;
  }
  if (platform === 'windows' && args.action === 'install' && !runningSea()) {
    io.err('ctbridge: the Windows service wrapper (WinSW) comes inside ctbridge.exe: run `ctbridge.exe agent service install` (see docs/windows.md).\n');
    return 2;
  }

  let code = 0;
  for (const step of plan.steps) {
    const result = carryOut(step, io);
    if (result === 0) continue;
    if (step.kind === 'run' && step.mayFail) continue;
    code = result;
    if (args.action !== 'status') io.err(`ctbridge: failed: ${describeStep(step).split('\n')[0]}\n`);
    break;
  }
  if (code === 0) for (const note of plan.notes) io.out(`${note}\n`);
  return code;
}

function userExists(name: string): boolean {
  return spawnSync('id', ['-u', name], { stdio: 'ignore' }).status === 0;
}

/** Carries out one step; returns 0, or the failed command's exit code (1 for file errors). */
function carryOut(step: Step, io: ServiceIo): number {
  switch (step.kind) {
    case 'mkdir':
      mkdirSync(step.path, { recursive: true });
      return 0;
    case 'write':
      writeFileSync(step.path, step.content ?? readAsset(step.asset!), step.mode !== undefined ? { mode: step.mode } : {});
      io.out(`wrote ${step.path}\n`);
      return 0;
    case 'remove':
      rmSync(step.path, { force: true });
      return 0;
    case 'run': {
      io.out(`> ${step.argv.map(quoteArg).join(' ')}\n`);
      const r = spawnSync(step.argv[0]!, step.argv.slice(1), { stdio: 'inherit', windowsHide: true });
      if (r.error) {
        io.err(`ctbridge: cannot run ${step.argv[0]}: ${r.error.message}\n`);
        return 1;
      }
      return r.status ?? 1;
    }
  }
}
