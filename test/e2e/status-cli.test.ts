/**
 * `ctbridge status` and `ctbridge reload` through the CLI against running
 * processes, as an IT admin runs them on the machine of the relay or the
 * agent; and the metrics both sides serve, whose labels a caller cannot
 * grow (no paths, no unknown tunnel names).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { closedPort, startFleet, type Fleet } from '../helpers/fleet.js';
import { runToEnd, stopAll, tempDir, writeYaml } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

let fleet: Fleet;
/** site-a's admin listener, e.g. http://127.0.0.1:40123 */
let siteAdmin: string;
/** A relay.yaml for the CLI: only admin.listen, the bound address (no secret needed to ask). */
let relayCliConfig: string;

beforeAll(async () => {
  fleet = await startFleet();
  siteAdmin = await fleet.siteA.adminUrl();
  relayCliConfig = writeYaml(tempDir(), 'relay.yaml', { admin: { listen: fleet.relay.adminUrl.replace('http://', '') } });
  const get = (path: string) => fetch(`${fleet.relay.url}${path}`);
  expect((await get('/t/web/one')).status).toBe(200);
  expect((await get('/t/files/download?bytes=5000')).status).toBe(200);
  expect((await get('/t/api/orders/secret-path-7f3a?token=abc')).status).toBe(502);
  expect((await get('/t/no-such-tunnel/secret-path-7f3a')).status).toBe(404);
});

afterAll(async () => {
  await stopAll();
  await fleet?.backend.close();
});

const lines = (text: string): string[] => text.split('\n');

describe('ctbridge status', () => {
  it("prints the relay's state, its tunnels and its agents as tables, from --config; exit 0 when ready", async () => {
    const r = await runToEnd(['status', '--config', relayCliConfig]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe(`relay 127.0.0.1:${fleet.relay.port}: ready (listening on 127.0.0.1:${fleet.relay.port})`);
    expect(r.stdout).toContain(`  public URL  ${fleet.relay.url}\n`);
    expect(r.stdout).toContain(`  config      ${fleet.relay.configFile}\n`);
    expect(out).toContain('TUNNEL  KIND  STATE    AGENTS  IN RELAY.YAML');
    expect(out).toContain('api     http  serving       1  yes');
    expect(out).toContain('files   http  serving       1  yes');
    expect(out).toContain('web     http  serving       1  yes');
    expect(out.find((l) => l.startsWith('AGENT '))).toMatch(/^AGENT +HOST +TUNNELS +FROM +CONNECTED +OPEN +IN +OUT +KEY +TOKEN EXPIRES$/);
    expect(out.find((l) => l.startsWith('site-a '))).toMatch(/^site-a +\S+ +web,api +127\.0\.0\.1 +\d+s +\d+ +[\d.]+ (B|KiB) +[\d.]+ (B|KiB) +\S+ +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 59m \d+s\)$/);
    expect(out.find((l) => l.startsWith('site-b '))).toMatch(/^site-b +\S+ +files +127\.0\.0\.1 /);
  });

  it('relay status is the same with the relay implied', async () => {
    const r = await runToEnd(['relay', 'status', '--config', relayCliConfig]);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)[0]).toMatch(/^relay 127\.0\.0\.1:\d+: ready /);
  });

  it("prints an agent's relay connections, tunnels and recent failures, from --admin", async () => {
    const r = await runToEnd(['status', '--admin', siteAdmin]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe('agent site-a: ready (connected to 1 of 1 relay(s), serving web, api)');
    expect(r.stdout).toMatch(/\n {2}token +[0-9a-f]{16}, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 59m \d+s\)\n/);
    expect(out.find((l) => l.startsWith('ws://'))).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${fleet.relay.port}/_ctbridge/agent +connected +\\d+s +0 +`));
    expect(out.find((l) => l.startsWith('TUNNEL'))).toMatch(/^TUNNEL +TARGET +PUBLIC URL +REQUESTS +FAILED +OPEN$/);
    expect(out.find((l) => l.startsWith('web '))).toMatch(new RegExp(`^web +${fleet.backend.url} +${fleet.relay.url}/t/web/ +1 +0 +\\d+$`));
    expect(out.find((l) => l.startsWith('api '))).toMatch(new RegExp(`^api +http://127\\.0\\.0\\.1:${fleet.deadPort} +${fleet.relay.url}/t/api/ +1 +1 +\\d+$`));
    expect(out).toContain('Recent target failures (newest first):');
    expect(out.find((l) => / ago +api +/.test(l))).toMatch(/^\d+s ago +api +CTB_TARGET_UNREACHABLE +the agent could not connect to http:\/\/127\.0\.0\.1:\d+ for tunnel 'api': connection refused$/);
  });

  it('finds an agent from its agent.yaml (relay: means agent) and prints the JSON with --json', async () => {
    const agentCliConfig = writeYaml(tempDir(), 'agent.yaml', { relay: 'wss://relay.example', admin: { listen: siteAdmin.replace('http://', '') } });
    const r = await runToEnd(['status', '--config', agentCliConfig, '--json']);
    expect(r.code).toBe(0);
    const status = JSON.parse(r.stdout) as { role: string; ready: boolean; agentId: string; tunnels: { name: string; requests: number }[] };
    expect(status).toMatchObject({ role: 'agent', ready: true, agentId: 'site-a' });
    expect(status.tunnels.map((t) => [t.name, t.requests])).toEqual([['web', 1], ['api', 1]]);
  });

  it('exits 1 and says NOT READY while the agent cannot reach its relay', async () => {
    const agent = await startAgentProcess({ relayUrl: `http://127.0.0.1:${await closedPort()}`, tunnels: { web: { target: fleet.backend.url } }, waitReady: false });
    const r = await runToEnd(['status', '--admin', await agent.adminUrl()]);
    expect(r.code).toBe(1);
    expect(lines(r.stdout)[0]).toMatch(/^agent acme-1: NOT READY \(.+\)$/);
    expect(r.stdout).toMatch(/ws:\/\/127\.0\.0\.1:\d+\/_ctbridge\/agent +(connecting|waiting to reconnect) /);
    await agent.stop();
  });

  it('exits 1 and says which address it tried and what to check when nothing answers', async () => {
    const port = await closedPort();
    const config = writeYaml(tempDir(), 'agent.yaml', { relay: 'wss://relay.example', admin: { listen: `127.0.0.1:${port}` } });
    const r = await runToEnd(['status', '--config', config]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cannot reach the agent's admin listener at http://127.0.0.1:${port} (connection refused: nothing listens there)`);
    expect(r.stderr).toContain('the agent is running');
    expect(r.stderr).toContain(`admin.listen in ${config}`);
    expect(r.stderr).toContain(`admin.allowFrom in ${config}`);
  });

  it('exits 1 and names admin.allowFrom when the admin listener refuses this address; a reload (SIGHUP) changes allowFrom', async () => {
    const guarded = await startRelayProcess({ admin: { listen: '127.0.0.1:0', allowFrom: ['192.0.2.0/24'] } });
    const r = await runToEnd(['status', '--admin', guarded.adminUrl]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`admin listener at ${guarded.adminUrl} refused this address (403): add it to admin.allowFrom`);

    const config = parse(readFileSync(guarded.configFile, 'utf8')) as { admin: Record<string, unknown> };
    config.admin.allowFrom = ['127.0.0.1/32'];
    writeFileSync(guarded.configFile, stringify(config));
    guarded.proc.child.kill('SIGHUP');
    await guarded.proc.waitForLog('config reloaded');
    expect((await runToEnd(['status', '--admin', guarded.adminUrl])).code).toBe(0);
    await guarded.proc.stop();
  });

  it('exits 2 for usage and config problems, naming the file and key', async () => {
    const none = await runToEnd(['status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--config');
    const off = writeYaml(tempDir(), 'relay.yaml', { admin: { listen: 'off' } });
    const r = await runToEnd(['status', '--config', off]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${off}: admin.listen: is off`);
    const zero = writeYaml(tempDir(), 'relay.yaml', { admin: { listen: '127.0.0.1:0' } });
    expect((await runToEnd(['status', '--config', zero])).stderr).toContain('--admin http://host:port');
    const missing = await runToEnd(['status', '--config', '/nonexistent/relay.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/relay.yaml');
    expect((await runToEnd(['status', '--admin', 'https://127.0.0.1:1/x'])).code).toBe(2);
  });
});

describe('ctbridge reload', () => {
  it('makes an agent read its config again and prints what it did', async () => {
    const r = await runToEnd(['reload', '--admin', await fleet.siteB.adminUrl()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`reloaded ${fleet.siteB.configFile}: 0 tunnel(s) changed, 0 relay connection(s) renewed\n`);
    await fleet.siteB.waitForLog('config reloaded');
  });

  it('exits 1 with the reason when the config is invalid, and the relay keeps serving', async () => {
    const good = readFileSync(fleet.relay.configFile, 'utf8');
    writeFileSync(fleet.relay.configFile, `${good}\nlisten: [not a host:port]\n`);
    try {
      const r = await runToEnd(['relay', 'reload', '--config', relayCliConfig]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('ctbridge: reload refused; the relay keeps running with its current config:');
      expect(r.stderr).toContain(fleet.relay.configFile);
    } finally {
      writeFileSync(fleet.relay.configFile, good);
    }
    expect((await fetch(`${fleet.relay.url}/t/web/after-refused-reload`)).status).toBe(200);
    const ok = await runToEnd(['reload', '--config', relayCliConfig]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`reloaded ${fleet.relay.configFile}\n`);
  });
});

describe('metrics on the admin listeners', () => {
  const scrape = async (url: string): Promise<string> => {
    const r = await fetch(`${url}/metrics`);
    expect(r.status).toBe(200);
    return r.text();
  };

  it('relay: agents per tunnel, bytes per tunnel, open exchanges, errors by code, token expiry per agent; no path or unknown tunnel as a label', async () => {
    const m = await scrape(fleet.relay.adminUrl);
    expect(m).toMatch(/^ctbridge_tunnel_agents\{tunnel="web"\} 1$/m);
    expect(m).toMatch(/^ctbridge_tunnel_agents\{tunnel="files"\} 1$/m);
    expect(m).toMatch(/^ctbridge_agents_connected 2$/m);
    expect(m).toMatch(/^ctbridge_exchanges_open \d+$/m);
    expect(m).toMatch(/^ctbridge_tunnel_bytes_total\{tunnel="files",direction="out"\} 5000$/m);
    expect(m).toMatch(/^ctbridge_errors_total\{tunnel="api",code="CTB_TARGET_UNREACHABLE"\} 1$/m);
    expect(m).toMatch(/^ctbridge_errors_total\{tunnel="",code="CTB_TUNNEL_UNKNOWN"\} 1$/m);
    expect(m).toMatch(/^ctbridge_agent_token_expiry_seconds\{agent="site-a"\} (3[0-5]\d\d)$/m);
    expect(m).toMatch(/^ctbridge_requests_total\{tunnel="",status="404"\} 1$/m);
    expect(m).not.toContain('ctbridge_streams_open');
    expect(m).not.toContain('no-such-tunnel');
    expect(m).not.toContain('secret-path');
    expect(m).not.toContain('orders');
  });

  it('agent: bytes per tunnel, errors by code, target latency, relay connected, token expiry; no path as a label', async () => {
    const m = await scrape(siteAdmin);
    expect(m).toMatch(/^ctbridge_agent_relay_connected\{relay="ws:\/\/127\.0\.0\.1:\d+\/_ctbridge\/agent"\} 1$/m);
    expect(m).toMatch(/^ctbridge_agent_errors_total\{tunnel="api",code="CTB_TARGET_UNREACHABLE"\} 1$/m);
    expect(m).toMatch(/^ctbridge_agent_tunnel_bytes_total\{tunnel="web",direction="out"\} \d+$/m);
    expect(m).toMatch(/^ctbridge_agent_target_duration_seconds_count\{tunnel="web"\} \d+$/m);
    expect(m).toMatch(/^ctbridge_agent_token_expiry_seconds \d+$/m);
    expect(m).toMatch(/^ctbridge_agent_reconnects_total\{relay="[^"]+"\} 0$/m);
    expect(m).not.toContain('secret-path');
    expect(m).not.toContain('orders');
  });
});
