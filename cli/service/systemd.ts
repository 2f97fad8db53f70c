/**
 * The agent as a systemd service: the unit in deploy/ctbridge-agent.service,
 * with ExecStart pointing at this ctbridge and the given config, written to
 * /etc/systemd/system/ and enabled.
 */
import { posix } from 'node:path';
import { stopTimeoutSeconds, type CommandLine, type ServiceAction, type ServicePlan, type Step } from './plan.js';

export const SYSTEMD_UNIT_NAME = 'ctbridge-agent';
export const SYSTEMD_UNIT_PATH = `/etc/systemd/system/${SYSTEMD_UNIT_NAME}.service`;
export const DEFAULT_LINUX_CONFIG = '/etc/ctbridge/agent.yaml';
/** The unit's User= and Group=. */
export const SERVICE_USER = 'ctbridge';

export interface SystemdServiceOptions {
  /** agent.yaml, absolute path. */
  configPath: string;
  command: CommandLine;
  shutdownGraceMs: number;
  /** deploy/ctbridge-agent.service as shipped. */
  template: string;
  /** Whether the user `ctbridge` exists already (install creates it otherwise). */
  userExists: boolean;
}

/** systemd quoting for ExecStart: words with spaces, quotes, backslashes or `$`/`%` are quoted and escaped. */
function systemdWord(w: string): string {
  const escaped = w.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}

/** The unit file text: the shipped template with this install's paths. */
export function agentUnit(opts: Omit<SystemdServiceOptions, 'userExists'>): string {
  const config = posix.resolve(opts.configPath);
  const dir = posix.dirname(config);
  const execStart = [opts.command.executable, ...opts.command.prefixArgs, 'agent', '--config', config].map(systemdWord).join(' ');
  const set = (text: string, key: string, value: string): string => {
    const re = new RegExp(`^${key}=.*$`, 'm');
    if (!re.test(text)) throw new Error(`the unit template has no ${key}= line`);
    return text.replace(re, () => `${key}=${value}`);
  };
  let unit = opts.template;
  unit = set(unit, 'ExecStart', execStart);
  if (!/^ExecReload=/m.test(unit)) unit = unit.replace(/^(ExecStart=.*)$/m, '$1\nExecReload=/bin/kill -HUP $MAINPID');
  unit = set(unit, 'WorkingDirectory', dir);
  // Optional ("-"): the token may be in agent.yaml instead.
  unit = set(unit, 'EnvironmentFile', `-${posix.join(dir, 'agent.env')}`);
  unit = set(unit, 'TimeoutStopSec', `${stopTimeoutSeconds(opts.shutdownGraceMs)}s`);
  unit = unit.replace(/^Documentation=.*\n/m, '');
  // The template's own install notes do not apply to the written copy.
  const body = unit.slice(unit.indexOf('[Unit]'));
  return `# Written by \`ctbridge agent service install --config ${config}\`.
# Run that again after moving ctbridge or the config; for local changes use
# \`systemctl edit ${SYSTEMD_UNIT_NAME}\` (an override that survives reinstalls).

${body}`;
}

export function systemdServicePlan(action: ServiceAction, opts: SystemdServiceOptions): ServicePlan {
  const unit = SYSTEMD_UNIT_NAME;
  const run = (argv: string[], why: string, mayFail = false): Step => ({ kind: 'run', argv, why, ...(mayFail ? { mayFail } : {}) });
  switch (action) {
    case 'install':
      return {
        steps: [
          ...(opts.userExists
            ? []
            : [run(['useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SERVICE_USER], `the unit runs as the system user ${SERVICE_USER}`)]),
          { kind: 'write', path: SYSTEMD_UNIT_PATH, content: agentUnit(opts), mode: 0o644, why: 'the systemd unit' },
          run(['systemctl', 'daemon-reload'], 'make systemd read the unit'),
          run(['systemctl', 'enable', '--now', unit], 'start it now and at every boot'),
        ],
        notes: [
          `agent.yaml and agent.env must be readable by the ${SERVICE_USER} user only (root:${SERVICE_USER}, mode 0640; agent.env root:root 0600): see docs/install.md.`,
          `Check it: systemctl status ${unit}; journalctl -u ${unit} -f (wait for "tunnel ready"). Reload the config: systemctl reload ${unit}.`,
        ],
      };
    case 'uninstall':
      return {
        steps: [
          run(['systemctl', 'disable', '--now', unit], 'stop it (it drains first) and remove it from boot', true),
          { kind: 'remove', path: SYSTEMD_UNIT_PATH },
          run(['systemctl', 'daemon-reload'], 'make systemd forget the unit'),
        ],
        notes: [`Kept: ${posix.resolve(opts.configPath)}, the ${SERVICE_USER} user, and the journal.`],
      };
    case 'start':
      return { steps: [run(['systemctl', 'start', unit], 'start the agent')], notes: [] };
    case 'stop':
      return { steps: [run(['systemctl', 'stop', unit], 'stop the agent: SIGTERM, it drains in-flight requests, then exits')], notes: [] };
    case 'status':
      return { steps: [run(['systemctl', 'status', '--no-pager', unit], 'show whether it runs, and its last log lines')], notes: [] };
  }
}
