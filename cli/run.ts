/** Long-running commands (relay, agent) and their `verify` twins. */
import { startAgent } from '../agent/index.js';
import { startRelay } from '../relay/index.js';
import { describeAgentConfig, describeRelayConfig, loadAgentConfig, loadRelayConfig, type LogConfig } from '../src/config/index.js';
import type { ReloadResult } from '../src/admin/server.js';
import { createLogger, flushLogger, type Logger } from '../src/log.js';
import { configureRedaction } from '../src/redact.js';
import { debugFromLogLevel } from './debug.js';

export async function verifyRelay(file: string): Promise<void> {
  const config = loadRelayConfig(file);
  process.stdout.write(`${file}: OK\n${describeRelayConfig(config)}\n`);
}

export async function verifyAgent(file: string): Promise<void> {
  const config = loadAgentConfig(file);
  process.stdout.write(`${file}: OK\n${describeAgentConfig(config)}\n`);
}

export async function runRelay(file: string): Promise<void> {
  const config = loadRelayConfig(file);
  applyLogConfig(config.log);
  const log = createLogger({ level: config.log.level, name: 'relay' });
  const relay = await startRelay(config, log);
  onShutdown(log, () => relay.close(), () => relay.reload());
}

export async function runAgent(file: string): Promise<void> {
  const config = loadAgentConfig(file);
  applyLogConfig(config.log);
  const log = createLogger({ level: config.log.level, name: 'agent' });
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
