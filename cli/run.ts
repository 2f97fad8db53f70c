/** Long-running commands (relay, agent) and their `verify` twins. */
import { startAgent } from '../agent/index.js';
import { startRelay } from '../relay/index.js';
import { describeAgentConfig, describeRelayConfig, loadAgentConfig, loadRelayConfig, readConfigFile, type AgentConfig, type LogConfig, type RelayConfig } from '../src/config/index.js';
import { WINDOWS_SECRET_NOTE, agentSecretFiles, describeMode, exposedSecretFiles, exposureText, relaySecretFiles, type ExposedSecretFile } from '../src/config/secret-files.js';
import type { ReloadResult } from '../src/admin/server.js';
import { createLogger, flushLogger, type Logger } from '../src/log.js';
import { configureRedaction } from '../src/redact.js';
import { debugFromLogLevel } from './debug.js';

/** Secret files of relay.yaml that group or others may read (src/config/secret-files.ts). */
function relayExposed(file: string, config: RelayConfig): ExposedSecretFile[] {
  return exposedSecretFiles(relaySecretFiles(file, readConfigFile(file), config));
}

function agentExposed(file: string, config: AgentConfig): ExposedSecretFile[] {
  return exposedSecretFiles(agentSecretFiles(file, readConfigFile(file), config));
}

/** `verify`: a warning per exposed secret file on stderr (the config is still OK); on Windows, what protects them instead. */
function warnExposed(exposed: readonly ExposedSecretFile[], holdsSecrets: boolean): void {
  for (const e of exposed) process.stderr.write(`ctbridge: warning: ${exposureText(e)}\n`);
  if (process.platform === 'win32' && holdsSecrets) process.stderr.write(`ctbridge: note: ${WINDOWS_SECRET_NOTE}\n`);
}

/** At start: one warning log line per exposed secret file. */
function logExposed(log: Logger, exposed: readonly ExposedSecretFile[]): void {
  for (const e of exposed) {
    log.warn({ file: e.file, holds: e.holds, mode: describeMode(e.mode, e.exposed), fix: e.fix }, `secret file readable by other users: run ${e.fix}`);
  }
}

export async function verifyRelay(file: string): Promise<void> {
  const config = loadRelayConfig(file);
  process.stdout.write(`${file}: OK\n${describeRelayConfig(config)}\n`);
  warnExposed(relayExposed(file, config), relaySecretFiles(file, readConfigFile(file), config).length > 0);
}

export async function verifyAgent(file: string): Promise<void> {
  const config = loadAgentConfig(file);
  process.stdout.write(`${file}: OK\n${describeAgentConfig(config)}\n`);
  warnExposed(agentExposed(file, config), agentSecretFiles(file, readConfigFile(file), config).length > 0);
}

export async function runRelay(file: string): Promise<void> {
  const config = loadRelayConfig(file);
  applyLogConfig(config.log);
  const log = createLogger({ level: config.log.level, name: 'relay' });
  logExposed(log, relayExposed(file, config));
  const relay = await startRelay(config, log);
  onShutdown(log, () => relay.close(), () => relay.reload());
}

export async function runAgent(file: string): Promise<void> {
  const config = loadAgentConfig(file);
  applyLogConfig(config.log);
  const log = createLogger({ level: config.log.level, name: 'agent' });
  logExposed(log, agentExposed(file, config));
  const agent = await startAgent(config, log);
  onShutdown(log, () => agent.close(), () => agent.reload());
}

/** Process-wide settings from log: — extra redacted names, stack traces at debug level. */
export function applyLogConfig(log: LogConfig): void {
  configureRedaction(log.redact);
  debugFromLogLevel(log.level);
}

/**
 * SIGTERM, SIGINT (Ctrl+C, which the Windows service wrapper sends) and
 * SIGBREAK (Ctrl+Break, Windows): graceful close, then exit; a second signal
 * exits at once.
 *
 * SIGHUP (`systemctl reload`; Windows has none: POST /reload on the admin
 * listener, or `ctbridge reload`): read the config file again and apply it
 * without a restart; an invalid file is logged and the running config stays.
 */
export function onShutdown(log: Logger, close: () => Promise<void>, reload?: () => Promise<ReloadResult>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    close()
      .then(() => flushLogger(log))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGBREAK', stop);
  if (!reload || process.platform === 'win32') return;
  process.on('SIGHUP', () => {
    if (stopping) {
      log.warn({ signal: 'SIGHUP' }, 'reload ignored: shutting down');
      return;
    }
    log.info({ signal: 'SIGHUP', via: 'SIGHUP', from: 'local signal' }, 'reloading config');
    void reload();
  });
}
