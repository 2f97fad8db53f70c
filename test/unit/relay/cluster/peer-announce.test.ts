import { describe, expect, it } from 'vitest';
import { checkNodeId, checkTunnelList, MAX_NODE_TUNNELS, tunnelsForLog } from '../../../../relay/cluster/peer-announce.js';

describe('what a peer node may announce', () => {
  it('accepts node ids by the cluster.nodeId rule', () => {
    expect(checkNodeId('relay-1.a_b')).toEqual({ ok: true, value: 'relay-1.a_b' });
  });

  it.each([
    ['ESC and U+202E', 'node\u001b[31m\u202e'],
    ['HTML', '<b>x</b>'],
    ['too long', 'n'.repeat(64)],
    ['empty', ''],
  ])('refuses a node id with %s, naming it cleaned', (_what, id) => {
    const r = checkNodeId(id);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).not.toMatch(/[\u001b\u202e]/);
  });

  it('refuses a non-string node id without echoing it', () => {
    const r = checkNodeId({ evil: 'x'.repeat(1000) });
    expect(r).toEqual({ ok: false, problem: expect.stringContaining('[object]') });
  });

  it('accepts tunnel names, deduplicated and sorted', () => {
    expect(checkTunnelList(['b', 'a', 'b'])).toEqual({ ok: true, value: ['a', 'b'] });
    expect(checkTunnelList([])).toEqual({ ok: true, value: [] });
  });

  it("refuses a name that is not an agent's tunnel name", () => {
    const r = checkTunnelList(['ok', '<b>x</b>']);
    expect(r).toEqual({ ok: false, problem: "announced '<b>x</b>', which is not a tunnel name (1-63 lower-case letters, digits, \"-\")" });
    expect(checkTunnelList(['A'])).toMatchObject({ ok: false });
    expect(checkTunnelList([7])).toMatchObject({ ok: false, problem: expect.stringContaining('[number 7]') });
    expect(checkTunnelList('t')).toMatchObject({ ok: false });
    expect(checkTunnelList(undefined)).toMatchObject({ ok: false, problem: expect.stringContaining('missing') });
  });

  it('caps a long name in the problem', () => {
    const r = checkTunnelList([`x\u001b${'y'.repeat(5000)}`]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problem.length).toBeLessThan(200);
      expect(r.problem).not.toContain('\u001b');
    }
  });

  it(`refuses more than ${MAX_NODE_TUNNELS} tunnels`, () => {
    const many = Array.from({ length: MAX_NODE_TUNNELS + 1 }, (_, i) => `t${i}`);
    expect(checkTunnelList(many)).toEqual({ ok: false, problem: `announced ${MAX_NODE_TUNNELS + 1} tunnels; a node may announce at most ${MAX_NODE_TUNNELS}` });
    expect(checkTunnelList(many.slice(1))).toMatchObject({ ok: true });
  });

  it('a log line lists at most 20 tunnels and counts them all', () => {
    const names = Array.from({ length: 3000 }, (_, i) => `t${i}`);
    const logged = tunnelsForLog(names);
    expect(logged.tunnelCount).toBe(3000);
    expect(logged.tunnels).toHaveLength(21);
    expect(logged.tunnels[20]).toBe('…and 2980 more');
    expect(tunnelsForLog(['a'])).toEqual({ tunnels: ['a'], tunnelCount: 1 });
  });
});
