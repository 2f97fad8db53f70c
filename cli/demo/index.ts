/**
 * `ctbridge demo` (= `npm start`): a relay, an agent, a sample intranet web
 * service, a sample Client Tracker provider and a small CT simulator, all in
 * one process on loopback, wired with a fresh random secret. It plays one
 * registration, one fetch and one push through the bridge, prints what
 * happened, and keeps running until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { startAgent } from '../../agent/index.js';
import { startRelay, type RelayHandle } from '../../relay/index.js';
import { onShutdown } from '../run.js';
import { parseAgentConfig, parseRelayConfig, type LogLevel } from '../../src/config/index.js';
import { startCtSimulator } from './ct-simulator.js';
import { startSampleProvider } from './sample-provider.js';
import { startSampleService } from './sample-service.js';
import { ListenError } from '../../src/listen.js';
import { createLogger, type Logger } from '../../src/log.js';
import { signAgentToken } from '../../src/token.js';
import { freePort } from './free-port.js';

const WEB = 'demo';
const CT = 'cioc';
const CT_PATHS = ['/ct/ctregister.asp', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp'];

export async function runDemo(port = Number(process.env.CTBRIDGE_DEMO_PORT ?? 8080)): Promise<void> {
  // JSON logs stay quiet unless asked for: the demo prints its own summary.
  const level = (process.env.CTBRIDGE_LOG_LEVEL ?? 'warn') as LogLevel;
  const log = createLogger({ level, name: 'demo' });
  const secret = randomBytes(24).toString('base64url');
  const say = (line = ''): void => void process.stderr.write(`${line}\n`);

  const service = await startSampleService();
  const ct = await startCtSimulator();
  const egressPort = await freePort();
  const provider = await startSampleProvider({ rpcBase: `http://127.0.0.1:${egressPort}/t/${CT}/` });

  const relay = await startDemoRelay(port, secret, ct.url, createLogger({ level, name: 'relay' }));
  const base = `http://127.0.0.1:${relay.address.port}`;
  const token = await signAgentToken({ agentId: 'demo-agent', tunnels: [WEB, CT], ttlMs: 30 * 24 * 3600_000, key: { secret } });
  const agentConfig = parseAgentConfig(
    {
      relay: `ws://127.0.0.1:${relay.address.port}`,
      token,
      tunnels: { [WEB]: { target: service.url }, [CT]: { target: provider.url, allowPaths: CT_PATHS } },
      egress: { listen: `127.0.0.1:${egressPort}` },
      admin: { listen: '127.0.0.1:0' },
      log: { level },
    },
    'demo agent config',
    {},
  );
  const agent = await startAgent(agentConfig, createLogger({ level, name: 'agent' }));
  await agent.whenReady();
  onShutdown(log, async () => {
    await agent.close();
    await relay.close();
    await Promise.all([service.close(), provider.close(), ct.close()]);
  });

  const web = `${base}/t/${WEB}/`;
  const registrationUrl = `${base}/t/${CT}/ct/ctregister.asp`;
  say();
  say('ctbridge demo: relay, agent and intranet services on loopback (Ctrl-C stops everything)');
  say();
  say('Generic HTTP tunnel');
  say(`  intranet service   ${service.url}   (reachable only "inside")`);
  say(`  public URL         ${web}`);
  say(`  try                curl -s '${web}hello?x=1'`);
  say();
  say('Client Tracker tunnel (kind: clienttracker)');
  say(`  provider           ${provider.registrationUrl}   (intranet)`);
  say(`  registration URL   ${registrationUrl}   <- give this to Client Tracker`);
  say(`  provider's CT RPC  http://127.0.0.1:${egressPort}/t/${CT}/   (the agent's egress)`);
  say(`  CT simulator RPC   ${ct.url}`);
  say();
  const page = (a: { host: string; port: number } | undefined): string => (a ? `http://127.0.0.1:${a.port}/` : 'off');
  say('Status pages (admin listeners, loopback only)');
  say(`  relay              ${page(relay.adminAddress)}`);
  say(`  agent              ${page(agent.adminAddress)}`);
  say();
  await playClientTracker(ct, provider, registrationUrl, say);
  say();
  say(`Check a provider yourself:  npx ctbridge check '${registrationUrl}' --id ZZZ00123`);
}

async function startDemoRelay(port: number, secret: string, rpcUrl: string, log: Logger): Promise<RelayHandle> {
  const config = (listenPort: number) =>
    parseRelayConfig(
      {
        listen: `127.0.0.1:${listenPort}`,
        auth: { secret },
        tunnels: { [WEB]: {}, [CT]: { kind: 'clienttracker', clientTracker: { rpcUrl } } },
        admin: { listen: '127.0.0.1:0' },
        log: { level: log.level },
      },
      'demo relay config',
      {},
    );
  try {
    return await startRelay(config(port), log);
  } catch (err) {
    if (!(err instanceof ListenError && err.systemCode === 'EADDRINUSE')) throw err;
    process.stderr.write(`port ${port} is in use; the demo relay takes a free port instead\n`);
    return startRelay(config(0), log);
  }
}

/** One registration, one fetch and one push, as Client Tracker and the provider would make them. */
async function playClientTracker(
  ct: Awaited<ReturnType<typeof startCtSimulator>>,
  provider: Awaited<ReturnType<typeof startSampleProvider>>,
  registrationUrl: string,
  say: (line?: string) => void,
): Promise<void> {
  const mark = (ok: boolean): string => (ok ? '✓' : '✗');
  const reg = await ct.register(registrationUrl);
  const stored = ct.registration;
  say(`${mark(reg.status === 200 && reg.validation.ok && !!stored)} CT registered the provider through the relay (HTTP ${reg.status}, schema ${reg.validation.ok ? 'valid' : 'INVALID'})`);
  if (stored) {
    say(`    resourceInfoURL  ${stored.resourceInfoURL}   (rewritten to the tunnel)`);
    say(`    launchURL        ${stored.launchURL.replace(/key=[^&]*/, 'key=[KEY]')}   (browser URL, left on the intranet)`);
  }
  const fetched = await ct.fetch(undefined, 'ZZZ00123');
  const info = fetched.parsed && fetched.parsed.kind === 'resourceInfo' ? fetched.parsed.resourceInfo : undefined;
  say(`${mark(fetched.status === 200 && !!info)} CT fetched id ZZZ00123: ${info ? `"${info.name}"` : fetched.text.slice(0, 200)}`);
  const pushed = await provider.pushResource({ id: 'ZZZ00123', name: info?.name ?? 'Record ZZZ00123', url: info?.url ?? 'https://intranet.example/record/ZZZ00123' });
  const answer = pushed.answer;
  const ok = pushed.status === 200 && answer?.kind === 'success';
  const arrived = ct.received.at(-1);
  say(`${mark(ok)} the provider pushed ZZZ00123 to CT through agent and relay (HTTP ${pushed.status}${ok ? `, CT's Request now holds: ${answer.ids.join(', ')}` : ''})`);
  say(`${mark(!!arrived && arrived.body.equals(pushed.sent))} the bytes CT received equal the bytes the provider sent (${pushed.sent.length} bytes)`);
}

