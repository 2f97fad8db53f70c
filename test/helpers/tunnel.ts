/**
 * A relay and agents started as real processes from config templates, the
 * way an operator and an IT admin would start them.
 */
import { signAgentToken } from '../../src/token.js';
import { runCli, tempDir, writeYaml, type CtbridgeProcess } from './processes.js';

export const TEST_SECRET = 'test-secret-0123456789abcdef-0123456789';

export interface RelayInfo {
  proc: CtbridgeProcess;
  port: number;
  url: string;
  /** The admin listener (health, readiness, metrics, status, reload). */
  adminUrl: string;
  dir: string;
  configFile: string;
}

export async function startRelayProcess(overrides: Record<string, unknown> = {}, port = 0): Promise<RelayInfo> {
  const dir = tempDir();
  const configFile = writeYaml(dir, 'relay.yaml', {
    listen: `127.0.0.1:${port}`,
    auth: { secret: TEST_SECRET },
    log: { level: 'info' },
    // Many relays run at once in the tests: any free port.
    admin: { listen: '127.0.0.1:0' },
    ...overrides,
  });
  const proc = runCli('relay', ['relay', '--config', configFile]);
  const line = await proc.waitForLog('relay listening');
  const actualPort = Number(String(line.listen).split(':').pop());
  return { proc, port: actualPort, url: `http://127.0.0.1:${actualPort}`, adminUrl: await proc.adminUrl(), dir, configFile };
}

export async function tokenFor(tunnels: string[], agentId = 'acme-1', ttlMs = 3600_000, secret = TEST_SECRET): Promise<string> {
  return signAgentToken({ agentId, tunnels, ttlMs, key: { secret } });
}

export interface AgentOptions {
  relayUrl: string;
  tunnels: Record<string, Record<string, unknown>>;
  token?: string;
  extra?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Wait for the 'tunnel ready' log line (default true). */
  waitReady?: boolean;
}

export async function startAgentProcess(opts: AgentOptions): Promise<CtbridgeProcess> {
  const dir = tempDir();
  const token = opts.token ?? (await tokenFor(Object.keys(opts.tunnels)));
  const configFile = writeYaml(dir, 'agent.yaml', {
    relay: opts.relayUrl.replace(/^http/, 'ws'),
    token,
    reconnect: { initialDelay: '100ms', maxDelay: '1s' },
    log: { level: 'info' },
    admin: { listen: '127.0.0.1:0' },
    tunnels: opts.tunnels,
    ...opts.extra,
  });
  const proc = runCli('agent', ['agent', '--config', configFile], opts.env);
  proc.configFile = configFile;
  if (opts.waitReady !== false) await proc.waitForLog('tunnel ready');
  return proc;
}
