/**
 * The agent as a Windows service, through WinSW (the service wrapper that
 * node-windows ships; MIT licence). ctbridge.exe carries WinSW as a SEA
 * asset and `agent service install` writes it next to agent.yaml as
 * ctbridge-agent-service.exe, with its XML definition, generated here.
 *
 * How a stop drains: WinSW stops a console program by attaching to its
 * console and sending Ctrl+C; Node turns that into SIGINT, which cli/run.ts
 * handles like SIGTERM (goaway, in-flight requests finish within
 * timeouts.shutdownGrace). WinSW kills the process only after <stoptimeout>,
 * which is set above shutdownGrace. (Ctrl+Break, SIGBREAK, is handled too.)
 *
 * Service account: the virtual account NT SERVICE\ctbridge-agent. It is this
 * service's own identity, with no password to manage and the rights of a
 * plain user, so the ACLs below can make agent.yaml (which holds the token)
 * readable by this service alone, besides SYSTEM and Administrators;
 * LocalService would share the file with every other service running as
 * LocalService. On the network it appears as the computer account.
 */
import { win32 } from 'node:path';
import { quoteArg, stopTimeoutSeconds, type CommandLine, type ServiceAction, type ServicePlan, type Step } from './plan.js';

/** SEA asset keys of WinSW (carried inside ctbridge.exe). */
export const WINSW_ASSET = 'winsw/winsw.exe';
export const WINSW_CONFIG_ASSET = 'winsw/winsw.exe.config';

export const WINDOWS_SERVICE_ID = 'ctbridge-agent';
export const WINDOWS_SERVICE_ACCOUNT = `NT SERVICE\\${WINDOWS_SERVICE_ID}`;
export const DEFAULT_WINDOWS_CONFIG = 'C:\\ProgramData\\ctbridge\\agent.yaml';
/** WinSW finds its XML by its own file name: <name>.exe reads <name>.xml. */
const WRAPPER = 'ctbridge-agent-service';
/** Well-known SIDs, so the ACLs work on Windows in any language ("Administratoren", …). */
const SYSTEM_SID = '*S-1-5-18';
const ADMINISTRATORS_SID = '*S-1-5-32-544';
/** Log files roll at this size (KiB), and this many are kept. */
export const LOG_ROLL_KIB = 10 * 1024;
export const LOG_KEEP_FILES = 8;

export interface WindowsServiceOptions {
  /** agent.yaml, absolute Windows path. Its folder holds the wrapper and logs\. */
  configPath: string;
  command: CommandLine;
  /** The agent's timeouts.shutdownGrace (ms), from the config. */
  shutdownGraceMs: number;
}

export interface WindowsServiceFiles {
  dir: string;
  logDir: string;
  wrapperExe: string;
  wrapperXml: string;
  wrapperConfig: string;
}

export function windowsServiceFiles(configPath: string): WindowsServiceFiles {
  const dir = win32.dirname(win32.resolve(configPath));
  return {
    dir,
    logDir: win32.join(dir, 'logs'),
    wrapperExe: win32.join(dir, `${WRAPPER}.exe`),
    wrapperXml: win32.join(dir, `${WRAPPER}.xml`),
    wrapperConfig: win32.join(dir, `${WRAPPER}.exe.config`),
  };
}

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The WinSW service definition (ctbridge-agent-service.xml). */
export function winswXml(opts: WindowsServiceOptions): string {
  const configPath = win32.resolve(opts.configPath);
  const { dir, logDir } = windowsServiceFiles(configPath);
  const args = [...opts.command.prefixArgs, 'agent', '--config', configPath].map(quoteArg).join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!--
  Written by \`ctbridge agent service install\`. To change it, edit agent.yaml
  and run \`ctbridge agent service uninstall\` and \`install\` again.
-->
<service>
  <id>${WINDOWS_SERVICE_ID}</id>
  <name>ctbridge agent</name>
  <description>ctbridge agent: carries requests from the ctbridge relay to intranet services. Config: ${xmlText(configPath)}</description>
  <executable>${xmlText(opts.command.executable)}</executable>
  <arguments>${xmlText(args)}</arguments>
  <workingdirectory>${xmlText(dir)}</workingdirectory>
  <startmode>Automatic</startmode>
  <!-- Restart after a crash or a failed start: 5 s, then 30 s, then every 60 s; the count resets after an hour up. -->
  <onfailure action="restart" delay="5 sec"/>
  <onfailure action="restart" delay="30 sec"/>
  <onfailure action="restart" delay="60 sec"/>
  <resetfailure>1 hour</resetfailure>
  <!-- Stop: Ctrl+C (SIGINT in the agent), the agent drains for up to timeouts.shutdownGrace (${Math.ceil(opts.shutdownGraceMs / 1000)} s), killed only after this. -->
  <stopparentprocessfirst>true</stopparentprocessfirst>
  <stoptimeout>${stopTimeoutSeconds(opts.shutdownGraceMs)} sec</stoptimeout>
  <!-- The agent's JSON log lines: ${WRAPPER}.out.log (and .err.log), rolled at ${LOG_ROLL_KIB / 1024} MiB, ${LOG_KEEP_FILES} kept. -->
  <logpath>${xmlText(logDir)}</logpath>
  <log mode="roll-by-size">
    <sizeThreshold>${LOG_ROLL_KIB}</sizeThreshold>
    <keepFiles>${LOG_KEEP_FILES}</keepFiles>
  </log>
</service>
`;
}

/** icacls commands: the folder and agent.yaml for SYSTEM, Administrators and the service account only; logs\ writable by the service. */
export function windowsAclCommands(configPath: string): string[][] {
  const file = win32.resolve(configPath);
  const { dir, logDir } = windowsServiceFiles(file);
  return [
    ['icacls', dir, '/inheritance:r', '/grant:r', `${SYSTEM_SID}:(OI)(CI)F`, `${ADMINISTRATORS_SID}:(OI)(CI)F`, `${WINDOWS_SERVICE_ACCOUNT}:(OI)(CI)RX`],
    ['icacls', file, '/inheritance:r', '/grant:r', `${SYSTEM_SID}:F`, `${ADMINISTRATORS_SID}:F`, `${WINDOWS_SERVICE_ACCOUNT}:R`],
    ['icacls', logDir, '/grant:r', `${WINDOWS_SERVICE_ACCOUNT}:(OI)(CI)M`],
  ];
}

export function windowsServicePlan(action: ServiceAction, opts: WindowsServiceOptions): ServicePlan {
  const f = windowsServiceFiles(opts.configPath);
  const wrapper = (verb: string, why: string, mayFail = false): Step => ({ kind: 'run', argv: [f.wrapperExe, verb], why, ...(mayFail ? { mayFail } : {}) });
  switch (action) {
    case 'install': {
      const notes = [
        `The service "${WINDOWS_SERVICE_ID}" runs ${opts.command.executable} as ${WINDOWS_SERVICE_ACCOUNT}.`,
        `Check it: ctbridge agent service status --config ${quoteArg(opts.configPath)}; the agent logs "tunnel ready" in ${win32.join(f.logDir, `${WRAPPER}.out.log`)}.`,
      ];
      if (/^[a-z]:\\users\\/i.test(opts.command.executable)) {
        notes.push(`Warning: ${opts.command.executable} is under a user profile. Copy ctbridge.exe to C:\\Program Files\\ctbridge\\ and install from there, so that only administrators can replace what the service runs.`);
      }
      return {
        steps: [
          { kind: 'mkdir', path: f.logDir },
          { kind: 'write', path: f.wrapperExe, asset: WINSW_ASSET, why: 'WinSW, the service wrapper' },
          { kind: 'write', path: f.wrapperConfig, asset: WINSW_CONFIG_ASSET, why: 'lets WinSW run on .NET Framework 4' },
          { kind: 'write', path: f.wrapperXml, content: winswXml(opts), why: 'the service definition' },
          wrapper('install', 'register the service with Windows'),
          { kind: 'run', argv: ['sc.exe', 'config', WINDOWS_SERVICE_ID, 'obj=', WINDOWS_SERVICE_ACCOUNT], why: `run it as the virtual account ${WINDOWS_SERVICE_ACCOUNT}` },
          ...windowsAclCommands(opts.configPath).map(
            (argv): Step => ({ kind: 'run', argv, why: argv[2] === '/inheritance:r' ? 'readable only by SYSTEM, Administrators and the service' : 'the service writes its logs here' }),
          ),
          wrapper('start', 'start the agent'),
        ],
        notes,
      };
    }
    case 'uninstall':
      return {
        steps: [
          wrapper('stop', 'stop the agent (it drains first)', true),
          wrapper('uninstall', 'remove the service from Windows'),
          { kind: 'remove', path: f.wrapperExe },
          { kind: 'remove', path: f.wrapperConfig },
          { kind: 'remove', path: f.wrapperXml },
        ],
        notes: [`Kept: ${win32.resolve(opts.configPath)} and the logs in ${f.logDir}. Delete ${f.dir} to remove everything.`],
      };
    case 'start':
      return { steps: [wrapper('start', 'start the agent')], notes: [] };
    case 'stop':
      return { steps: [wrapper('stop', 'stop the agent: Ctrl+C, it drains in-flight requests, then exits')], notes: [] };
    case 'status':
      return { steps: [wrapper('status', 'print Started, Stopped or NonExistent')], notes: [] };
  }
}
