/**
 * Two agents for tunnel `web` of a relay, for relay unit tests: real mux
 * sessions (ws-pair.ts) registered as `held` and `live` in an
 * AgentRegistry. The test makes each agent answer as it needs; close()
 * closes both sessions.
 */
import { AgentRegistry, type ConnectedAgent } from '../../relay/agent-registry.js';
import { captureLog, relayConfig } from '../unit/relay/clienttracker/helpers.js';
import { sessionPair } from './ws-pair.js';

export async function twoAgentsForWeb() {
  const config = relayConfig({ tunnels: { web: { kind: 'http' } } });
  const { lines, log } = captureLog();
  const registry = new AgentRegistry(config.limits.maxStreamsPerAgent);
  const heldPair = await sessionPair();
  const livePair = await sessionPair();
  const agent = (id: string, session: ConnectedAgent['session']): ConnectedAgent => ({ connectionId: `c-${id}`, agentId: id, remoteAddress: '127.0.0.1', tunnels: ['web'], session, draining: false });
  const held = agent('held', heldPair.relay);
  registry.add(held);
  registry.add(agent('live', livePair.relay));
  return {
    config,
    lines,
    log,
    registry,
    heldPair,
    livePair,
    held,
    async close(): Promise<void> {
      await heldPair.close();
      await livePair.close();
    },
  };
}
