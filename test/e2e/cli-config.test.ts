/**
 * The CLI as an operator meets it: verify commands, config errors that name
 * file, key and expected value, and `token` printing only the token.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTokenUnverified } from '../../src/token.js';
import { runToEnd, stopAll, tempDir, writeYaml } from '../helpers/processes.js';
import { TEST_SECRET } from '../helpers/tunnel.js';

afterAll(stopAll);

describe('ctbridge CLI', () => {
  it('token prints only the token, usable as TOKEN=$(ctbridge token ...)', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET } });
    const r = await runToEnd(['token', '--config', file, '--agent', 'acme-1', '--tunnels', 'cioc,ucws', '--ttl', '30d']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = decodeTokenUnverified(r.stdout.trim());
    expect(claims.agentId).toBe('acme-1');
    expect(claims.tunnels).toEqual(['cioc', 'ucws']);
    expect(claims.expiresAt.getTime() - Date.now()).toBeGreaterThan(29 * 86400_000);
  });

  it('CTBRIDGE_JWT_SECRET overrides auth.secret for token', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET } });
    const r = await runToEnd(['token', '--config', file, '--agent', 'a', '--tunnels', 'x'], { CTBRIDGE_JWT_SECRET: 'env-secret-0123456789abcdef-0123456789' });
    expect(r.code).toBe(0);
  });

  it('relay verify accepts a good config and describes it without secrets', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { listen: '127.0.0.1:8080', auth: { secret: TEST_SECRET }, tunnels: { ucws: {} } });
    const r = await runToEnd(['relay', 'verify', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK');
    expect(r.stdout).toContain('ucws');
    expect(r.stdout + r.stderr).not.toContain(TEST_SECRET);
  });

  it('relay verify names file, key and expected value for a typo', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET }, tunnels: { cioc: { kind: 'clienttraker' } } });
    const r = await runToEnd(['relay', 'verify', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('tunnels.cioc.kind');
    expect(r.stderr).toContain('"clienttracker"');
  });

  it('agent verify names an unknown key and suggests the right one', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'agent.yaml', { relay: 'ws://127.0.0.1:8080', token: 'x.y.z', tunnels: { ucws: { targt: 'http://127.0.0.1:7224' } } });
    const r = await runToEnd(['agent', 'verify', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tunnels.ucws.targt');
    expect(r.stderr).toContain('did you mean "target"');
  });

  it('agent verify refuses a non-http target and a missing token, naming both ways to give one', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'agent.yaml', { relay: 'ws://127.0.0.1:8080', tunnels: { ucws: { target: 'ftp://x' } } });
    const r = await runToEnd(['agent', 'verify', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tunnels.ucws.target');
    expect(r.stderr).toContain('CTBRIDGE_AGENT_TOKEN');
  });

  it('a missing config file is named with the reason', async () => {
    const r = await runToEnd(['relay', '--config', '/nonexistent/relay.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nonexistent/relay.yaml');
    expect(r.stderr).toMatch(/ENOENT|no such file/);
  });
});
