/**
 * `ctbridge` command line: relay and agent (each with `verify`), token, status, reload, tail, replay, demo, check.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config.
 */
// First: V8 settings that must be in place before anything allocates (src/v8-flags.ts).
import '../src/v8-flags.js';
import { hideBin } from 'yargs/helpers';
import yargs, { type Argv } from 'yargs';
import { isCtbridgeError } from '../src/errors.js';
import { DEFAULT_TOKEN_TTL } from '../src/token.js';
import { VERSION } from '../src/version.js';

const configOption = <T>(y: Argv<T>) =>
  y.option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'YAML config file' });

/** `status` and `reload`: the process to ask, by its config file or its admin listener's address. */
const adminOptions = <T>(y: Argv<T>) =>
  y
    .option('config', { alias: 'c', type: 'string', describe: "the relay.yaml or agent.yaml of the running process: its admin.listen says where to ask" })
    .option('admin', { type: 'string', describe: 'the admin listener to ask instead, e.g. http://127.0.0.1:9090' })
    .conflicts('config', 'admin');

/** `relay reload`, `agent status`, ...: `ctbridge reload` / `ctbridge status` with that side's defaults. */
async function sideCommand(action: 'reload' | 'status', role: 'relay' | 'agent', config: string): Promise<void> {
  if (action === 'reload') {
    const { reloadCommand } = await import('./reload.js');
    process.exitCode = await reloadCommand({ config, role });
  } else {
    const { statusCommand } = await import('./status.js');
    process.exitCode = await statusCommand({ config, role });
  }
}

/** Bad usage found by a check: printed as yargs prints its own, exit code 2. */
class UsageError extends Error {}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName('ctbridge')
    .usage('$0 <command>\n\nReverse-proxy bridge: a cloud relay reaches intranet HTTP services through an outbound WebSocket from an on-premise agent.')
    .command(
      'relay [action]',
      'run the relay (cloud side); `relay verify` checks a config without starting; `relay reload`, `relay status`: as `ctbridge reload`, `ctbridge status`',
      (y) => configOption(y.positional('action', { choices: ['verify', 'reload', 'status'] as const })),
      async (a) => {
        if (a.action === 'reload' || a.action === 'status') return sideCommand(a.action, 'relay', a.config);
        const run = await import('./run.js');
        await (a.action === 'verify' ? run.verifyRelay(a.config) : run.runRelay(a.config));
      },
    )
    .command(
      'agent [action]',
      'run the agent (on-premise side); `agent verify` checks a config without starting; `agent service` installs it as a service; `agent reload`, `agent status`: as `ctbridge reload`, `ctbridge status`',
      (y) =>
        configOption(y.positional('action', { choices: ['verify', 'reload', 'status'] as const }))
          .option('connect', {
            type: 'boolean',
            default: false,
            describe: 'with verify: also reach the relay (proxy, proxy authentication, TLS, WebSocket handshake) and print each step with ✓/✗, without starting the agent',
          })
          // Without verify, --connect would be ignored (and `agent --connect` would start the agent): say so instead.
          .check((a) => {
            if (a.connect && a.action !== 'verify') throw new UsageError(`--connect belongs to \`ctbridge agent verify --connect --config ${a.config ?? 'agent.yaml'}\`; it does nothing ${a.action ? `with \`agent ${a.action}\`` : 'without verify'}`);
            return true;
          }, false)
          .command(
          'service <action>',
          'install, uninstall, start, stop or show the agent as a service (Windows: WinSW; Linux: systemd)',
          (s) =>
            s
              .positional('action', { choices: ['install', 'uninstall', 'start', 'stop', 'status'] as const, demandOption: true })
              .option('dry-run', { type: 'boolean', default: false, describe: 'print the files and commands, change nothing' })
              .option('platform', { choices: ['windows', 'linux'] as const, describe: 'with --dry-run: the plan for this system instead of this host\'s' }),
          async (a) => {
            const { serviceCommand } = await import('./service/index.js');
            process.exitCode = await serviceCommand({ action: a.action, config: a.config, dryRun: a['dry-run'], platform: a.platform });
          },
        ),
      async (a) => {
        if (a.action === 'reload' || a.action === 'status') return sideCommand(a.action, 'agent', a.config);
        const run = await import('./run.js');
        if (a.action === 'verify' && a.connect) {
          const { verifyConnect } = await import('./verify-connect.js');
          process.exitCode = await verifyConnect(a.config);
          return;
        }
        await (a.action === 'verify' ? run.verifyAgent(a.config) : run.runAgent(a.config));
      },
    )
    .command(
      'token',
      'issue an agent token (prints only the token; its id, agent, tunnels, key and expiry go to stderr)',
      (y) =>
        configOption(y)
          .option('agent', { type: 'string', demandOption: true, describe: 'agent id (token subject), e.g. acme-1' })
          .option('tunnels', { type: 'string', demandOption: true, describe: 'comma-separated tunnels the agent may serve' })
          .option('ttl', { type: 'string', default: DEFAULT_TOKEN_TTL, describe: 'lifetime, e.g. 30d, 12h' }),
      async (a) => {
        const { issueToken } = await import('./token.js');
        await issueToken(a.config, a.agent, a.tunnels, a.ttl);
      },
    )
    .command(
      'check <registration-url>',
      'check a Client Tracker provider as the CT server would (directly or through a relay /t/<tunnel>/ URL) and suggest the tunnel config',
      (y) =>
        y
          .positional('registration-url', { type: 'string', demandOption: true, describe: 'registration URL: intranet (http://intranet/ct/ctregister.asp) or relay (https://relay/t/<tunnel>/...)' })
          .option('id', { type: 'string', describe: 'an existing item id: also fetch resourceInfoURL with it' })
          .option('taxonomy-ids', { type: 'string', describe: 'comma-separated ids: also fetch resourceTaxonomyInfoURL' })
          .option('tunnel', { type: 'string', describe: 'tunnel name for the suggested config (default: from the relay URL, else "provider")' })
          .option('json', { type: 'boolean', default: false, describe: 'print a machine-readable JSON report' }),
      async (a) => {
        const { checkCommand } = await import('./check/index.js');
        process.exitCode = await checkCommand(a);
      },
    )
    .command(
      'status',
      'show a running relay or agent (ready, tunnels, agents or relay connections, recent failures) from its admin listener',
      (y) => adminOptions(y).option('json', { type: 'boolean', default: false, describe: 'print the status JSON (GET /api/status) as it is' }),
      async (a) => {
        const { statusCommand } = await import('./status.js');
        process.exitCode = await statusCommand(a);
      },
    )
    .command(
      'reload',
      'make a running relay or agent read its config file again (what SIGHUP does; for Windows too), through its admin listener',
      (y) => adminOptions(y),
      async (a) => {
        const { reloadCommand } = await import('./reload.js');
        process.exitCode = await reloadCommand(a);
      },
    )
    .command(
      'tail',
      'stream the exchanges a running relay or agent handles, as they happen, from its admin listener (like cloudflared tail)',
      (y) =>
        adminOptions(y)
          .option('tunnel', { type: 'string', describe: 'only this tunnel' })
          .option('status', { type: 'string', describe: 'only this status or class, e.g. 5xx, 404' })
          .option('code', { type: 'string', describe: 'only this error code, e.g. CTB_TARGET_UNREACHABLE' })
          .option('request-id', { type: 'string', describe: 'only this request id' })
          .option('json', { type: 'boolean', default: false, describe: 'one JSON object a line' }),
      async (a) => {
        const { tailCommand } = await import('./tail.js');
        process.exitCode = await tailCommand({ ...a, requestId: a['request-id'] });
      },
    )
    .command(
      'replay <request-id>',
      "make a running agent send a request it kept to the tunnel's target again, and show the new answer next to the old one",
      (y) =>
        adminOptions(y)
          .positional('request-id', { type: 'string', demandOption: true, describe: 'the request id (X-Ctbridge-Request-Id, log lines, ctbridge tail)' })
          .option('json', { type: 'boolean', default: false, describe: 'print both answers as JSON' }),
      async (a) => {
        const { replayCommand } = await import('./replay.js');
        process.exitCode = await replayCommand({ ...a, requestId: a['request-id'] });
      },
    )
    .command('demo', 'run a local relay, agent and sample intranet service together', {}, async () => {
      const { runDemo } = await import('./demo/index.js');
      await runDemo();
    })
    .demandCommand(1, 'name a command: relay, agent, token, status, reload, tail, replay, check, demo')
    .strict()
    .fail((msg, err) => {
      if (err && !(err instanceof UsageError)) throw err;
      process.stderr.write(`ctbridge: ${msg}\nRun "ctbridge --help" for usage.\n`);
      process.exit(2);
    })
    .version(VERSION)
    .help()
    .parseAsync();
}

/** The first line of an error's message, for people. */
function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.split('\n')[0]!.trim() || 'no message';
}

main().catch(async (err: unknown) => {
  const { isDebug } = await import('./debug.js');
  const stack = (e: unknown): string => (isDebug() && e instanceof Error && e.stack ? `${e.stack}\n` : '');
  if (isCtbridgeError(err)) {
    // The message names file, key and fix: no stack unless asked for.
    process.stderr.write(`ctbridge: ${err.userMessage}\n${stack(err.cause)}`);
    process.exit(err.code === 'CTB_CONFIG_INVALID' ? 2 : 1);
  }
  const details = stack(err);
  process.stderr.write(
    `ctbridge: unexpected failure: ${oneLine(err)}${details ? `\n${details}` : ' (run with log.level: debug, or CTBRIDGE_DEBUG=1, for details)\n'}`,
  );
  process.exit(1);
});
