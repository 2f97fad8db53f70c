/**
 * Where `ctbridge status` and `ctbridge reload` ask: admin.listen of the
 * config (relay or agent defaults), or --admin; and what they say when the
 * answer is not a status.
 */
import { symlinkSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adminTarget, adminTargetFromConfig, adminTargetFromOption, connectHost, findAdminTarget, othersNote, roleOfConfig, unexpectedAnswer } from '../../../cli/admin-client.js';
import { tempDir, writeYaml } from '../../helpers/processes.js';

describe('admin target', () => {
  it('tells an agent.yaml (it names its relay) from a relay.yaml', () => {
    expect(roleOfConfig({ relay: 'wss://r', tunnels: {} })).toBe('agent');
    expect(roleOfConfig({ listen: '0.0.0.0:8080', auth: {} })).toBe('relay');
    expect(roleOfConfig(null)).toBe('relay');
  });

  it("uses each side's default admin.listen, reading nothing but the admin section (no secret needed)", () => {
    const dir = tempDir();
    const relay = writeYaml(dir, 'relay.yaml', { listen: '0.0.0.0:8080', auth: { secret: '${CTBRIDGE_JWT_SECRET}' } });
    const agent = writeYaml(dir, 'agent.yaml', { relay: 'wss://relay.example', tunnels: { web: { target: 'http://intranet' } } });
    const urls = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `http://127.0.0.1:${from + i}`);
    // Not set: where the process may be instead when the default port was taken.
    expect(adminTargetFromConfig(relay)).toEqual({ url: 'http://127.0.0.1:9090', role: 'relay', file: relay, fallbacks: urls(9081, 9089) });
    expect(adminTargetFromConfig(agent)).toEqual({ url: 'http://127.0.0.1:9091', role: 'agent', file: agent, fallbacks: urls(9092, 9099) });
    expect(adminTargetFromConfig(agent, 'relay').url).toBe('http://127.0.0.1:9090');
  });

  it('an admin.listen that is set has no fallback ports', () => {
    const file = writeYaml(tempDir(), 'agent.yaml', { relay: 'wss://r', admin: { listen: '127.0.0.1:9091' } });
    expect(adminTargetFromConfig(file)).toEqual({ url: 'http://127.0.0.1:9091', role: 'agent', file, fallbacks: [] });
  });

  it('asks a wildcard listener on loopback, and brackets IPv6', () => {
    const dir = tempDir();
    expect(adminTargetFromConfig(writeYaml(dir, 'a.yaml', { admin: { listen: '0.0.0.0:9100' } })).url).toBe('http://127.0.0.1:9100');
    expect(adminTargetFromConfig(writeYaml(dir, 'b.yaml', { admin: { listen: '[::]:9100' } })).url).toBe('http://[::1]:9100');
    expect(adminTargetFromConfig(writeYaml(dir, 'c.yaml', { admin: { listen: '[::1]:9100' } })).url).toBe('http://[::1]:9100');
    expect(connectHost('10.1.2.3')).toBe('10.1.2.3');
  });

  it('refuses an admin listener that is off, on port 0, or misspelt, naming file and key', () => {
    const dir = tempDir();
    const off = writeYaml(dir, 'off.yaml', { admin: { listen: 'off' } });
    expect(() => adminTargetFromConfig(off)).toThrow(`${off}: admin.listen: is off, so the relay has no admin listener to ask`);
    const zero = writeYaml(dir, 'zero.yaml', { relay: 'wss://r', admin: { listen: '127.0.0.1:0' } });
    expect(() => adminTargetFromConfig(zero)).toThrow(/admin\.listen: has port 0 .*--admin http:\/\/host:port/);
    const typo = writeYaml(dir, 'typo.yaml', { admin: { listen: '127.0.0.1:9090', alowFrom: [] } });
    expect(() => adminTargetFromConfig(typo)).toThrow(/admin\.alowFrom: unknown key \(did you mean "allowFrom"\?\)/);
    expect(() => adminTargetFromConfig(`${dir}/missing.yaml`)).toThrow(/missing\.yaml: cannot read the config file/);
  });

  it('takes --admin as a URL or host:port', () => {
    expect(adminTargetFromOption('http://127.0.0.1:9090').url).toBe('http://127.0.0.1:9090');
    expect(adminTargetFromOption('127.0.0.1:9091/').url).toBe('http://127.0.0.1:9091');
    expect(adminTargetFromOption('[::1]:9091').url).toBe('http://[::1]:9091');
    expect(adminTargetFromOption('http://0.0.0.0:9091', 'agent')).toEqual({ url: 'http://127.0.0.1:9091', role: 'agent', file: undefined });
    expect(() => adminTargetFromOption('https://127.0.0.1:9090')).toThrow(/expected http:\/\/host:port/);
    expect(() => adminTargetFromOption('127.0.0.1')).toThrow(/expected http:\/\/host:port/);
    expect(() => adminTargetFromOption('http://127.0.0.1:9090/metrics')).toThrow(/no path/);
    expect(() => adminTarget({})).toThrow(/--config: give the relay.yaml or agent.yaml/);
  });

  it('explains a 403 (admin.allowFrom) and an answer that is not from an admin listener', () => {
    const target = { url: 'http://10.0.0.5:9090', role: 'relay' as const, file: '/etc/ctbridge/relay.yaml' };
    expect(unexpectedAnswer(target, '/api/status', { status: 403, body: '{}' })).toBe(
      "the relay's admin listener at http://10.0.0.5:9090 refused this address (403): add it to admin.allowFrom in /etc/ctbridge/relay.yaml, or run this command on the machine of the relay",
    );
    expect(unexpectedAnswer(target, '/api/status', { status: 404, body: 'no tunnel' })).toMatch(/answered HTTP 404, not what a ctbridge admin listener answers: is admin\.listen in \/etc\/ctbridge\/relay\.yaml the address/);
  });
});

describe('findAdminTarget (admin.listen not set: the default port or a fallback one)', () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    delete process.env.CTBRIDGE_TEST_ADMIN_PORTS;
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** An admin listener on `port` whose /api/status says `status`; false when the port is taken. */
  const fake = (port: number, status: object) =>
    new Promise<boolean>((resolve) => {
      const s = http.createServer((_req, res) => res.end(JSON.stringify(status)));
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => (servers.push(s), resolve(true)));
    });

  /**
   * Consecutive ports this test holds with the statuses given; the first. Below the ephemeral range
   * (32768 and up), whose consecutive ports a busy machine's outgoing connections keep taking.
   */
  async function range(statuses: object[]): Promise<number> {
    for (let i = 0; i < 50; i++) {
      const base = 20_000 + Math.floor(Math.random() * 12_000);
      const ok = await Promise.all(statuses.map((st, i) => fake(base + i, st)));
      if (ok.every(Boolean)) return base;
      await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    }
    throw new Error(`no ${statuses.length} consecutive free ports on loopback between 20000 and 32000`);
  }

  it('picks the listener of the same role that runs with this config file (by its real path); notes a second one', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'agent.yaml', { relay: 'wss://r' });
    const link = join(dir, 'link.yaml');
    symlinkSync(file, link);
    const base = await range([
      { role: 'agent', ready: true, config: join(dir, 'other.yaml') },
      { role: 'relay', ready: true, config: file },
      { role: 'agent', ready: true, config: file },
      { role: 'agent', ready: true, config: link },
    ]);
    process.env.CTBRIDGE_TEST_ADMIN_PORTS = `${base}-${base + 5}`;
    const found = await findAdminTarget({ config: file });
    expect(found.target.url).toBe(`http://127.0.0.1:${base + 2}`);
    expect(found.others).toEqual([`http://127.0.0.1:${base + 3}`]);
    expect(othersNote(found)).toBe(`ctbridge: note: another process also runs with ${file}, at http://127.0.0.1:${base + 3}; this is http://127.0.0.1:${base + 2} (--admin chooses)\n`);
  });

  it('none runs with it (not running, or a version that does not say): the default port, as before; admin.listen set: no search', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'agent.yaml', { relay: 'wss://r' });
    const base = await range([{ role: 'agent', ready: true, config: join(dir, 'other.yaml') }, { role: 'agent', ready: true }]);
    process.env.CTBRIDGE_TEST_ADMIN_PORTS = `${base}-${base + 3}`;
    expect(await findAdminTarget({ config: file })).toMatchObject({ target: { url: `http://127.0.0.1:${base}` }, others: [] });
    const set = writeYaml(dir, 'set.yaml', { relay: 'wss://r', admin: { listen: `127.0.0.1:${base + 1}` } });
    expect((await findAdminTarget({ config: set })).target.url).toBe(`http://127.0.0.1:${base + 1}`);
  });
});
