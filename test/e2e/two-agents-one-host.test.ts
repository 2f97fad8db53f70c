/**
 * Two agents on one host with the same (default) admin settings, as during
 * an upgrade or for two relays: the default admin port is taken, so each
 * takes the next free port of its fallback range and logs it, and
 * `ctbridge status --config` / `ctbridge reload --config` find each one by
 * its config file. An admin.listen that is set and taken still fails.
 *
 * Not 9091-9099 of this machine (other tests and programs may hold them):
 * CTBRIDGE_TEST_ADMIN_PORTS gives the processes and the CLI a range whose
 * first port this test holds itself, as another process would.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runCli, runToEnd, stopAll, tempDir, writeYaml, type CtbridgeProcess } from '../helpers/processes.js';
import { TEST_SECRET, startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
let relay: RelayInfo;
let holder: net.Server;
let first: number;
let env: NodeJS.ProcessEnv;
const agents: { id: string; proc: CtbridgeProcess; config: string; port: number }[] = [];

/** A server holding `port` on loopback (another program: it drops every connection), or undefined when something else holds it already. */
function hold(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer((socket) => socket.destroy());
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

beforeAll(async () => {
  backend = await startBackend();
  relay = await startRelayProcess({ tunnels: { web: {}, files: {} } });
  // A free port to start the range at, held by this test: the "default" admin port is taken. Below the
  // ephemeral range (32768 and up), whose ports a busy machine's outgoing connections keep taking.
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const s = await hold(port);
    if (s) {
      holder = s;
      first = port;
      break;
    }
  }
  expect(holder).toBeDefined();
  env = { CTBRIDGE_TEST_ADMIN_PORTS: `${first}-${first + 8}` };
  for (const [id, tunnel] of [['site-a', 'web'], ['site-b', 'files']] as const) {
    // No admin key at all: the default admin.listen, the same for both.
    const proc = await startAgentProcess({
      relayUrl: relay.url,
      token: await tokenFor([tunnel], id),
      tunnels: { [tunnel]: { target: backend.url } },
      extra: { admin: undefined },
      env,
    });
    const port = Number(new URL(await proc.adminUrl()).port);
    agents.push({ id, proc, config: proc.configFile!, port });
  }
});

afterAll(async () => {
  await stopAll();
  await backend?.close();
  await new Promise((r) => (holder ? holder.close(r) : r(undefined)));
});

describe('two agents on one host, admin.listen not set', () => {
  it('both start; each takes a free port of the range above the taken default, and says so in a warning', async () => {
    const [a, b] = agents;
    expect(a.port).toBeGreaterThan(first);
    expect(b.port).toBeGreaterThan(first);
    expect(a.port).toBeLessThanOrEqual(first + 8);
    expect(b.port).toBeLessThanOrEqual(first + 8);
    expect(a.port).not.toBe(b.port);
    for (const x of agents) {
      const line = await x.proc.waitForLog('admin listener on a fallback port: the default one is in use');
      expect(line).toMatchObject({ level: 40, listen: `127.0.0.1:${x.port}`, defaultPort: first });
    }
    // Both serve.
    expect((await fetch(`${relay.url}/t/web/x`)).status).toBe(200);
    expect((await fetch(`${relay.url}/t/files/x`)).status).toBe(200);
  });

  it('ctbridge status --config a.yaml and --config b.yaml each report their own agent', async () => {
    for (const x of agents) {
      const r = await runToEnd(['status', '--config', x.config], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^agent ${x.id}: ready `));
      expect(r.stdout).toContain(`  config    ${x.config}\n`);
      expect((await runToEnd(['agent', 'status', '--config', x.config], env)).stdout.split('\n')[0]).toMatch(new RegExp(`^agent ${x.id}: ready `));
      const json = await runToEnd(['status', '--config', x.config, '--json'], env);
      expect(JSON.parse(json.stdout)).toMatchObject({ role: 'agent', agentId: x.id, config: x.config });
    }
  });

  it('ctbridge reload --config b.yaml reloads agent b, not a', async () => {
    const [a, b] = agents;
    const r = await runToEnd(['reload', '--config', b.config], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await b.proc.waitForLog((l) => /reload/i.test(String(l.msg)));
    expect(a.proc.lines.some((l) => /reload/i.test(String(l.msg)))).toBe(false);
  });

  it('a relay without admin.listen does the same: its default port taken, status --config finds it on a fallback port', async () => {
    const config = writeYaml(tempDir(), 'relay.yaml', { listen: '127.0.0.1:0', auth: { secret: TEST_SECRET }, tunnels: { other: {} } });
    const second = runCli('relay', ['relay', '--config', config], env);
    const port = Number(new URL(await second.adminUrl()).port);
    expect(port).toBeGreaterThan(first);
    expect(agents.map((a) => a.port)).not.toContain(port);
    await second.waitForLog('admin listener on a fallback port: the default one is in use');
    const r = await runToEnd(['status', '--config', config], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`  config      ${config}\n`);
    expect(r.stdout).toContain('other   http  no agent');
  });

  it('an admin.listen that is set and taken still fails, with the usual message', async () => {
    const config = writeYaml(tempDir(), 'agent.yaml', {
      relay: relay.url.replace(/^http/, 'ws'),
      token: await tokenFor(['web'], 'site-c'),
      admin: { listen: `127.0.0.1:${first}` },
      tunnels: { web: { target: backend.url } },
    });
    const p = runCli('agent', ['agent', '--config', config], env);
    expect(await p.exited).toBe(2);
    expect(p.stderr).toContain(`${config}: admin.listen: cannot listen on 127.0.0.1:${first}: the address is already in use`);
  });
});
