import { describe, expect, it } from 'vitest';
import { AgentRegistry, type ConnectedAgent } from '../../../relay/agent-registry.js';
import type { MuxSession } from '../../../src/mux/session.js';

function agent(id: string, tunnels: string[], outgoing = 0): ConnectedAgent {
  const session = { isOpen: true, outgoingCount: outgoing } as unknown as MuxSession;
  return { connectionId: id, agentId: id, remoteAddress: '127.0.0.1', tunnels, session, draining: false };
}

const pickedId = (r: ReturnType<AgentRegistry['pick']>) =>
  'agent' in r ? r.agent.agentId : 'none' in r ? 'none' : 'draining' in r ? 'draining' : 'busy';

describe('AgentRegistry', () => {
  it('spreads new exchanges round-robin over the agents of a tunnel', () => {
    const reg = new AgentRegistry(10);
    reg.add(agent('a', ['t']));
    reg.add(agent('b', ['t']));
    expect([1, 2, 3, 4].map(() => pickedId(reg.pick('t')))).toEqual(['a', 'b', 'a', 'b']);
  });

  it('gives everything to the remaining agent when one leaves', () => {
    const reg = new AgentRegistry(10);
    const a = agent('a', ['t']);
    reg.add(a);
    reg.add(agent('b', ['t']));
    reg.remove(a);
    expect([1, 2, 3].map(() => pickedId(reg.pick('t')))).toEqual(['b', 'b', 'b']);
    expect(reg.hasSeen('t')).toBe(true);
  });

  it('never gives a draining agent a new exchange', () => {
    const reg = new AgentRegistry(10);
    const a = agent('a', ['t']);
    a.draining = true;
    reg.add(a);
    expect(pickedId(reg.pick('t'))).toBe('draining');
    reg.add(agent('b', ['t']));
    expect([1, 2, 3].map(() => pickedId(reg.pick('t')))).toEqual(['b', 'b', 'b']);
  });

  it('reports busy when every agent is at its exchange limit, none when there is no agent', () => {
    const reg = new AgentRegistry(2);
    reg.add(agent('a', ['t'], 2));
    expect(pickedId(reg.pick('t'))).toBe('busy');
    expect(pickedId(reg.pick('other'))).toBe('none');
    expect(reg.hasSeen('other')).toBe(false);
  });

  it('counts open exchanges exactly against the limit', () => {
    const reg = new AgentRegistry(2);
    reg.add(agent('a', ['t'], 1));
    expect(pickedId(reg.pick('t'))).toBe('a');
  });

  it('never picks the agent a re-send avoids', () => {
    const reg = new AgentRegistry(10);
    const a = agent('a', ['t']);
    reg.add(a);
    reg.add(agent('b', ['t']));
    expect([1, 2, 3].map(() => pickedId(reg.pick('t', a)))).toEqual(['b', 'b', 'b']);
    reg.remove(reg.agentsOf('t')[1]);
    expect('agent' in reg.pick('t', a)).toBe(false);
  });
});
