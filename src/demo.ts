/**
 * `ctbridge demo` (= `npm start`): a relay, an agent and a sample intranet
 * service in one process on loopback, wired with a fresh random secret.
 */
import { randomBytes } from 'node:crypto';
import { startAgent } from '../agent/index.js';
import { startRelay } from '../relay/index.js';
import { onShutdown } from './cli-run.js';
import { parseAgentConfig, parseRelayConfig } from './config/index.js';
import { startSampleService } from './demo/sample-service.js';
import { createLogger } from './log.js';
import { signAgentToken } from './token.js';

const TUNNEL = 'demo';

export async function runDemo(port = Number(process.env.CTBRIDGE_DEMO_PORT ?? 8080)): Promise<void> {
  const log = createLogger({ level: (process.env.CTBRIDGE_LOG_LEVEL as 'info') ?? 'info', name: 'demo' });
  const secret = randomBytes(24).toString('base64url');
  const service = await startSampleService();
  const relayConfig = (listenPort: number) =>
    parseRelayConfig({ listen: `127.0.0.1:${listenPort}`, auth: { secret }, tunnels: { [TUNNEL]: {} } }, 'demo relay config', {});
  let relay;
  try {
    relay = await startRelay(relayConfig(port), log.child({ name: 'relay' }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    log.warn({ port }, 'port in use; the demo relay takes a free port instead');
    relay = await startRelay(relayConfig(0), log.child({ name: 'relay' }));
  }
  const base = `http://127.0.0.1:${relay.address.port}`;
  const token = await signAgentToken({ agentId: 'demo-agent', tunnels: [TUNNEL], ttlMs: 24 * 3600_000, key: { secret } });
  const agentConfig = parseAgentConfig(
    { relay: `ws://127.0.0.1:${relay.address.port}`, token, tunnels: { [TUNNEL]: { target: service.url } } },
    'demo agent config',
    {},
  );
  const agent = await startAgent(agentConfig, log.child({ name: 'agent' }));
  await agent.whenReady();
  const publicUrl = `${base}/t/${TUNNEL}/`;
  process.stderr.write(
    [
      '',
      'ctbridge demo is running: relay, agent and a sample intranet service on loopback.',
      `  intranet service  ${service.url}  (reachable only "inside")`,
      `  public URL        ${publicUrl}`,
      '',
      'Try:',
      `  curl -s '${publicUrl}hello?x=1'`,
      `  curl -s -X POST --data-binary 'some body' '${publicUrl}echo'`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  onShutdown(log, async () => {
    await agent.close();
    await relay.close();
    await service.close();
  });
}
