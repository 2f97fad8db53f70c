/**
 * Issue 12, finding 5: removing a tunnel's policy on reload opened it to
 * everyone while an agent's token still named it, and the reload said only
 * "reloaded". Real relay and agent processes; reloads through
 * `ctbridge reload`, as an operator does.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runToEnd, stopAll, writeYaml } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, TEST_SECRET, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
beforeAll(async () => {
  backend = await startBackend();
});
afterEach(stopAll);
afterAll(async () => {
  await backend?.close();
});

/** relay.yaml rewritten with `config`, then `ctbridge reload --admin`: its exit code and what it printed. */
async function reload(relay: RelayInfo, config: Record<string, unknown>) {
  writeYaml(relay.dir, 'relay.yaml', { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, log: { level: 'info' }, auth: { secret: TEST_SECRET }, ...config });
  const before = relay.proc.countLogs('config reloaded');
  const r = await runToEnd(['reload', '--admin', relay.adminUrl]);
  await relay.proc.waitForLog((l) => l.msg === 'config reloaded' && relay.proc.countLogs('config reloaded') > before);
  return r;
}

const status = async (url: string): Promise<{ status: number; code: string | null }> => {
  const r = await fetch(url);
  await r.arrayBuffer();
  return { status: r.status, code: r.headers.get('x-ctbridge-error') };
};

describe('removing or weakening a served tunnel’s policy on reload', () => {
  it('default mode: the reload answer and a warning name every tunnel whose policy was removed or widened', async () => {
    const relay = await startRelayProcess({ tunnels: { locked: { allowFrom: ['10.0.0.0/8'] }, paths: { allowPaths: ['/api/'] } } });
    await startAgentProcess({ relayUrl: relay.url, token: await tokenFor(['locked', 'paths']), tunnels: { locked: { target: backend.url }, paths: { target: backend.url } } });
    expect(await status(`${relay.url}/t/locked/x`)).toEqual({ status: 403, code: 'CTB_SOURCE_NOT_ALLOWED' });
    expect(await status(`${relay.url}/t/paths/admin`)).toEqual({ status: 404, code: 'CTB_PATH_NOT_ALLOWED' });

    const r = await reload(relay, { tunnels: { paths: { allowPaths: ['/api/', '/admin'] } } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('policy weakened for tunnels agents serve: locked: no longer declared in relay.yaml, but an agent still serves it: now open to every address on every path (lost its allowFrom)');
    expect(r.stdout).toContain('paths: allowPaths widened: now also /admin');
    const warn = await relay.proc.waitForLog('reload weakened the policy of tunnels agents serve');
    expect(warn.level).toBe(40);
    expect(warn.changes).toEqual([
      { tunnel: 'locked', change: expect.stringContaining('no longer declared in relay.yaml') },
      { tunnel: 'paths', change: 'allowPaths widened: now also /admin' },
    ]);
    // Reported, and applied as configured: the operator was told.
    expect((await status(`${relay.url}/t/locked/x`)).status).toBe(200);
  });

  it('requireDeclaredTunnels: an undeclared tunnel in the token is not served; a reload that drops a served tunnel cuts it', async () => {
    const relay = await startRelayProcess({ requireDeclaredTunnels: true, tunnels: { locked: { allowFrom: ['127.0.0.0/8'] } } });
    const agent = await startAgentProcess({ relayUrl: relay.url, token: await tokenFor(['locked', 'extra']), tunnels: { locked: { target: backend.url }, extra: { target: backend.url } } });
    const warned = await relay.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith("agent's tunnels not served"));
    expect(warned).toMatchObject({ level: 40, tunnels: ['extra'], agentId: 'acme-1' });
    expect(await status(`${relay.url}/t/extra/x`)).toEqual({ status: 404, code: 'CTB_TUNNEL_UNKNOWN' });
    expect((await status(`${relay.url}/t/locked/x`)).status).toBe(200);
    // The agent learns no public URL for it; the relay's status says it is not served.
    expect((await agent.waitForLog((l) => l.msg === 'serving tunnel' && l.tunnel === 'extra')).publicUrl).toBeUndefined();
    const s = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { tunnels: { name: string; state: string }[] };
    expect(s.tunnels.find((t) => t.name === 'extra')?.state).toBe('not served');
    expect(s.tunnels.find((t) => t.name === 'locked')?.state).toBe('serving');

    const r = await reload(relay, { requireDeclaredTunnels: true, tunnels: {} });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('locked: no longer declared in relay.yaml: not served any more (requireDeclaredTunnels)');
    expect(r.stdout).toContain('not served (not declared in relay.yaml, requireDeclaredTunnels is on): extra');
    expect((await relay.proc.waitForLog('tunnels not served any more: relay.yaml does not declare them and requireDeclaredTunnels is on')).tunnels).toEqual(['extra', 'locked']);
    expect(await status(`${relay.url}/t/locked/x`)).toEqual({ status: 404, code: 'CTB_TUNNEL_UNKNOWN' });
    // Turning strict mode off is a weakening too.
    const off = await reload(relay, { tunnels: {} });
    expect(off.stdout).toContain('requireDeclaredTunnels turned off');
  });
});
