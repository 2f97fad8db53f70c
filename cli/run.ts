/** Long-running commands (relay, agent) and their `verify` twins. */
import { startAgent } from '../agent/index.js';
import { startRelay } from '../relay/index.js';
import { describeAgentConfig, describeRelayConfig, loadAgentConfig, loadRelayConfig, type LogConfig } from '../src/config/index.js';
import { isCtbridgeError } from '../src/errors.js';
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
  let relay = await startRelay(config, log);
  onShutdown(
    log,
    () => relay.close(),
    () => {
      const next = loadRelayConfig(file);
      return async () => {
        log.level = next.log.level;
        await relay.close();
        relay = await startRelay(next, log);
      };
    },
  );
}

export async function runAgent(file: string): Promise<void> {
  const config = loadAgentConfig(file);
  applyLogConfig(config.log);
  const log = createLogger({ level: config.log.level, name: 'agent' });
  let agent = await startAgent(config, log);
  onShutdown(
    log,
    () => agent.close(),
    () => {
      const next = loadAgentConfig(file);
      return async () => {
        log.level = next.log.level;
        await agent.close();
        agent = await startAgent(next, log);
      };
    },
  );
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
 * SIGHUP (`systemctl reload`, not on Windows), when `reload` is given:
 * reload() reads the config again and returns the restart; if the config is
 * invalid (it throws), log why and keep running as before;
 * else close gracefully (drain) and start again with the new config, in the
 * same process. A start that fails then exits 1 (the service manager
 * restarts it).
 */
export function onShutdown(log: Logger, close: () => Promise<void>, reload?: () => () => Promise<void>): void {
  let stopping = false;
  let reloading = false;
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
    if (stopping || reloading) {
      log.warn({ signal: 'SIGHUP' }, stopping ? 'reload ignored: shutting down' : 'reload ignored: a reload is under way');
      return;
    }
    log.info({ signal: 'SIGHUP' }, 'reloading config');
    let restart: () => Promise<void>;
    try {
      restart = reload();
    } catch (err) {
      log.error({ err: isCtbridgeError(err) ? err.userMessage : err }, 'reload failed: the config is invalid; still running with the previous one');
      return;
    }
    reloading = true;
    restart().then(
      () => {
        reloading = false;
        if (!stopping) log.info('config reloaded');
      },
      (err: unknown) => {
        log.error({ err: isCtbridgeError(err) ? err.userMessage : err }, 'reload failed: cannot start with the new config; exiting');
        void flushLogger(log).finally(() => process.exit(1));
      },
    );
  });
}
