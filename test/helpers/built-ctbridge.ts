/**
 * A built ctbridge (the installed package's bin, the Linux single
 * executable) run the way an operator runs it: a relay from a relay.yaml,
 * an agent.yaml with a token for tunnel `web`, `agent verify`, then the
 * agent, timed from its start to "tunnel ready".
 */
import { expect } from 'vitest';
import { writeYaml, type CtbridgeProcess } from './processes.js';

/** How the test starts a command of that build (runCli / runToEnd with its command and environment). */
export interface BuiltCtbridge {
  run(name: string, args: string[]): CtbridgeProcess;
  runToEnd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export interface RelayAndAgentOptions {
  dir: string;
  relayYaml: string;
  token: string;
  /** The target of tunnel `web`. */
  target: string;
  /** More keys of agent.yaml. */
  agent?: Record<string, unknown>;
}

export async function relayAndAgent(ctbridge: BuiltCtbridge, o: RelayAndAgentOptions): Promise<{ relay: CtbridgeProcess; agent: CtbridgeProcess; relayUrl: string; readyMs: number }> {
  const relay = ctbridge.run('relay', ['relay', '--config', o.relayYaml]);
  const listening = await relay.waitForLog('relay listening');
  const relayUrl = `http://127.0.0.1:${String(listening.listen).split(':').pop()}`;

  const agentYaml = writeYaml(o.dir, 'agent.yaml', {
    relay: relayUrl.replace(/^http/, 'ws'),
    token: o.token,
    ...o.agent,
    tunnels: { web: { target: o.target } },
  });
  const verify = await ctbridge.runToEnd(['agent', 'verify', '--config', agentYaml]);
  expect(verify.code).toBe(0);
  expect(verify.stdout).toContain('OK');

  const t0 = performance.now();
  const agent = ctbridge.run('agent', ['agent', '--config', agentYaml]);
  await agent.waitForLog('tunnel ready');
  return { relay, agent, relayUrl, readyMs: performance.now() - t0 };
}
