/** The Windows service definition (WinSW XML), ACLs and command plans: pure functions, checked on any OS. */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { describeStep, stopTimeoutSeconds, type Step } from '../../../cli/service/plan.js';
import {
  LOG_KEEP_FILES,
  LOG_ROLL_KIB,
  WINDOWS_SERVICE_ACCOUNT,
  windowsAclCommands,
  windowsServiceFiles,
  windowsServicePlan,
  winswXml,
  WINSW_ASSET,
  WINSW_CONFIG_ASSET,
} from '../../../cli/service/windows.js';

const CONFIG = 'C:\\ProgramData\\ctbridge\\agent.yaml';
const EXE = 'C:\\Program Files\\ctbridge\\ctbridge.exe';
const opts = { configPath: CONFIG, command: { executable: EXE, prefixArgs: [] }, shutdownGraceMs: 30_000 };

function parseService(xml: string): Record<string, unknown> {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => name === 'onfailure' }).parse(xml) as { service: Record<string, unknown> };
  return doc.service;
}

const runs = (steps: Step[]) => steps.filter((s): s is Extract<Step, { kind: 'run' }> => s.kind === 'run').map((s) => s.argv);

describe('winswXml', () => {
  it('runs the running ctbridge.exe as `agent --config <path>` from the config folder, automatically at boot', () => {
    const s = parseService(winswXml(opts));
    expect(s.id).toBe('ctbridge-agent');
    expect(s.name).toBe('ctbridge agent');
    expect(String(s.description)).toContain(CONFIG);
    expect(s.executable).toBe(EXE);
    expect(s.arguments).toBe(`agent --config ${CONFIG}`);
    expect(s.workingdirectory).toBe('C:\\ProgramData\\ctbridge');
    expect(s.startmode).toBe('Automatic');
  });

  it('restarts on failure with growing delays, and resets the count after an hour', () => {
    const s = parseService(winswXml(opts));
    expect((s.onfailure as Record<string, string>[]).map((f) => [f['@action'], f['@delay']])).toEqual([
      ['restart', '5 sec'],
      ['restart', '30 sec'],
      ['restart', '60 sec'],
    ]);
    expect(s.resetfailure).toBe('1 hour');
  });

  it('gives the agent longer to drain than timeouts.shutdownGrace before WinSW kills it', () => {
    expect(parseService(winswXml(opts)).stoptimeout).toBe('45 sec');
    expect(parseService(winswXml({ ...opts, shutdownGraceMs: 120_000 })).stoptimeout).toBe('135 sec');
    expect(parseService(winswXml({ ...opts, shutdownGraceMs: 0 })).stoptimeout).toBe('45 sec');
    for (const grace of [0, 1, 29_999, 30_000, 31_500, 600_000]) expect(stopTimeoutSeconds(grace) * 1000).toBeGreaterThan(grace);
    expect(parseService(winswXml(opts)).stopparentprocessfirst).toBe(true);
  });

  it('writes rolling logs by size under <config folder>\\logs', () => {
    const s = parseService(winswXml(opts));
    expect(s.logpath).toBe('C:\\ProgramData\\ctbridge\\logs');
    expect(s.log).toEqual({ '@mode': 'roll-by-size', sizeThreshold: LOG_ROLL_KIB, keepFiles: LOG_KEEP_FILES });
  });

  it('quotes paths with spaces, escapes XML, and runs node with bin/ctbridge.js when not a single executable', () => {
    const s = parseService(
      winswXml({
        configPath: 'D:\\Data & Config\\ctbridge\\agent.yaml',
        command: { executable: 'C:\\Program Files\\nodejs\\node.exe', prefixArgs: ['C:\\ctbridge\\node_modules\\ctbridge\\bin\\ctbridge.js'] },
        shutdownGraceMs: 30_000,
      }),
    );
    expect(s.executable).toBe('C:\\Program Files\\nodejs\\node.exe');
    expect(s.arguments).toBe('C:\\ctbridge\\node_modules\\ctbridge\\bin\\ctbridge.js agent --config "D:\\Data & Config\\ctbridge\\agent.yaml"');
    expect(s.workingdirectory).toBe('D:\\Data & Config\\ctbridge');
  });
});

describe('windows service ACLs', () => {
  it('make the folder and agent.yaml readable only by SYSTEM, Administrators (by SID) and the service account; logs writable by it', () => {
    expect(windowsAclCommands(CONFIG)).toEqual([
      ['icacls', 'C:\\ProgramData\\ctbridge', '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F', 'NT SERVICE\\ctbridge-agent:(OI)(CI)RX'],
      ['icacls', CONFIG, '/inheritance:r', '/grant:r', '*S-1-5-18:F', '*S-1-5-32-544:F', 'NT SERVICE\\ctbridge-agent:R'],
      ['icacls', 'C:\\ProgramData\\ctbridge\\logs', '/grant:r', 'NT SERVICE\\ctbridge-agent:(OI)(CI)M'],
    ]);
  });
});

describe('windowsServicePlan', () => {
  const f = windowsServiceFiles(CONFIG);

  it('install: wrapper files next to the config, register, virtual account, ACLs, start, in that order', () => {
    const plan = windowsServicePlan('install', opts);
    expect(plan.steps.slice(0, 4)).toEqual([
      { kind: 'mkdir', path: 'C:\\ProgramData\\ctbridge\\logs' },
      { kind: 'write', path: 'C:\\ProgramData\\ctbridge\\ctbridge-agent-service.exe', asset: WINSW_ASSET, why: expect.any(String) },
      { kind: 'write', path: 'C:\\ProgramData\\ctbridge\\ctbridge-agent-service.exe.config', asset: WINSW_CONFIG_ASSET, why: expect.any(String) },
      { kind: 'write', path: 'C:\\ProgramData\\ctbridge\\ctbridge-agent-service.xml', content: winswXml(opts), why: expect.any(String) },
    ]);
    expect(runs(plan.steps)).toEqual([
      [f.wrapperExe, 'install'],
      ['sc.exe', 'config', 'ctbridge-agent', 'obj=', WINDOWS_SERVICE_ACCOUNT],
      ...windowsAclCommands(CONFIG),
      [f.wrapperExe, 'start'],
    ]);
    expect(plan.notes.join('\n')).not.toContain('Warning');
  });

  it('install warns when ctbridge.exe sits under a user profile', () => {
    const plan = windowsServicePlan('install', { ...opts, command: { executable: 'C:\\Users\\it\\Downloads\\ctbridge.exe', prefixArgs: [] } });
    expect(plan.notes.join('\n')).toContain('Warning: C:\\Users\\it\\Downloads\\ctbridge.exe is under a user profile');
  });

  it('uninstall: stop (may fail), unregister, remove the wrapper files; config and logs stay', () => {
    const plan = windowsServicePlan('uninstall', opts);
    expect(plan.steps).toEqual([
      { kind: 'run', argv: [f.wrapperExe, 'stop'], mayFail: true, why: expect.any(String) },
      { kind: 'run', argv: [f.wrapperExe, 'uninstall'], why: expect.any(String) },
      { kind: 'remove', path: f.wrapperExe },
      { kind: 'remove', path: f.wrapperConfig },
      { kind: 'remove', path: f.wrapperXml },
    ]);
    expect(plan.notes.join('\n')).toContain('Kept: C:\\ProgramData\\ctbridge\\agent.yaml');
  });

  it.each(['start', 'stop', 'status'] as const)('%s runs the wrapper with that verb', (action) => {
    expect(runs(windowsServicePlan(action, opts).steps)).toEqual([[f.wrapperExe, action]]);
  });

  it('dry-run lines show the command as typed in a console', () => {
    const line = describeStep(windowsServicePlan('install', opts).steps.find((s) => s.kind === 'run' && s.argv[0] === 'sc.exe')!);
    expect(line.split('\n')[0]).toBe('run sc.exe config ctbridge-agent obj= "NT SERVICE\\ctbridge-agent"');
  });
});
