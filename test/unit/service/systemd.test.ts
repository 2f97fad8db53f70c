/** The systemd unit that `agent service install` writes, and the systemctl plans. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../../cli/service/index.js';
import { agentUnit, SYSTEMD_UNIT_PATH, systemdServicePlan } from '../../../cli/service/systemd.js';

const template = readFileSync(new URL('../../../deploy/ctbridge-agent.service', import.meta.url), 'utf8');
const base = {
  configPath: '/etc/ctbridge/agent.yaml',
  command: { executable: '/usr/bin/node', prefixArgs: ['/opt/ctbridge/node_modules/ctbridge/bin/ctbridge.js'] },
  shutdownGraceMs: 30_000,
  template,
  userExists: true,
};
const values = (unit: string, key: string): string[] => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

describe('agentUnit', () => {
  it('starts this ctbridge with the given config, reloads with SIGHUP, and keeps the template otherwise', () => {
    const unit = agentUnit(base);
    expect(values(unit, 'ExecStart')).toEqual(['/usr/bin/node /opt/ctbridge/node_modules/ctbridge/bin/ctbridge.js agent --config /etc/ctbridge/agent.yaml']);
    expect(values(unit, 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(values(unit, 'WorkingDirectory')).toEqual(['/etc/ctbridge']);
    expect(values(unit, 'EnvironmentFile')).toEqual(['-/etc/ctbridge/agent.env']);
    expect(values(unit, 'TimeoutStopSec')).toEqual(['45s']);
    for (const [key, value] of [
      ['User', 'ctbridge'],
      ['Restart', 'always'],
      ['KillSignal', 'SIGTERM'],
      ['ProtectSystem', 'strict'],
      ['NoNewPrivileges', 'yes'],
      ['WantedBy', 'multi-user.target'],
    ]) {
      expect(values(unit, key!)).toEqual([value]);
    }
    expect(unit).toMatch(/^# Written by `ctbridge agent service install --config \/etc\/ctbridge\/agent\.yaml`/);
    expect(unit).not.toContain('Documentation=');
    expect(unit.indexOf('[Unit]')).toBeLessThan(unit.indexOf('[Service]'));
  });

  it('a single executable runs by itself; paths with spaces are quoted; TimeoutStopSec follows shutdownGrace', () => {
    const unit = agentUnit({ ...base, configPath: '/srv/my ctbridge/agent.yaml', command: { executable: '/opt/ctbridge/ctbridge', prefixArgs: [] }, shutdownGraceMs: 90_000 });
    expect(values(unit, 'ExecStart')).toEqual(['/opt/ctbridge/ctbridge agent --config "/srv/my ctbridge/agent.yaml"']);
    expect(values(unit, 'TimeoutStopSec')).toEqual(['105s']);
  });

  it('refuses a template without the lines it must set', () => {
    expect(() => agentUnit({ ...base, template: template.replace(/^ExecStart=.*\n/m, '') })).toThrow(/no ExecStart= line/);
  });
});

describe('systemdServicePlan', () => {
  const runs = (plan: ReturnType<typeof systemdServicePlan>) => plan.steps.flatMap((s) => (s.kind === 'run' ? [s.argv] : []));

  it('install writes the unit, reloads systemd, enables and starts it; creates the user only if missing', () => {
    const plan = systemdServicePlan('install', base);
    expect(plan.steps[0]).toEqual({ kind: 'write', path: SYSTEMD_UNIT_PATH, content: agentUnit(base), mode: 0o644, why: expect.any(String) });
    expect(runs(plan)).toEqual([
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', '--now', 'ctbridge-agent'],
    ]);
    expect(runs(systemdServicePlan('install', { ...base, userExists: false }))[0]).toEqual([
      'useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'ctbridge',
    ]);
  });

  it('uninstall disables and stops (may fail), removes the unit, reloads systemd', () => {
    const plan = systemdServicePlan('uninstall', base);
    expect(plan.steps).toEqual([
      { kind: 'run', argv: ['systemctl', 'disable', '--now', 'ctbridge-agent'], mayFail: true, why: expect.any(String) },
      { kind: 'remove', path: SYSTEMD_UNIT_PATH },
      { kind: 'run', argv: ['systemctl', 'daemon-reload'], why: expect.any(String) },
    ]);
  });

  it.each([
    ['start', ['systemctl', 'start', 'ctbridge-agent']],
    ['stop', ['systemctl', 'stop', 'ctbridge-agent']],
    ['status', ['systemctl', 'status', '--no-pager', 'ctbridge-agent']],
  ] as const)('%s maps to systemctl', (action, argv) => {
    expect(runs(systemdServicePlan(action, base))).toEqual([argv]);
  });
});

describe('parseEnvFile', () => {
  it('reads KEY=VALUE lines as systemd does, skipping comments and blanks', () => {
    expect(parseEnvFile('# token\nCTBRIDGE_AGENT_TOKEN=a.b.c\n\nexport X="quoted value"\r\nY=\'single\'\nnot a line\n')).toEqual({
      CTBRIDGE_AGENT_TOKEN: 'a.b.c',
      X: 'quoted value',
      Y: 'single',
    });
  });
});
