/**
 * The CLI as an operator meets it: verify commands, config errors that name
 * file, key and expected value, and `token` printing only the token.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTokenUnverified } from '../../src/token.js';
import { runCli, runToEnd, stopAll, tempDir, writeYaml } from '../helpers/processes.js';
import { TEST_SECRET, tokenFor } from '../helpers/tunnel.js';

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
    // One line on stderr says what was issued; the token id is what auth.revoked.tokens takes.
    const expires = claims.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(r.stderr).toBe(`token id ${claims.tokenId} for agent acme-1 (tunnels cioc,ucws) signed with auth.secret, expires ${expires}\n`);
    expect(claims.tokenId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('token lasts 90 days by default and names the key it signed with (the first of auth.keys)', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', {
      auth: { keys: [{ id: '2027-02', secret: `${TEST_SECRET}-new` }, { id: '2026-11', secret: TEST_SECRET }] },
    });
    const r = await runToEnd(['token', '--config', file, '--agent', 'acme-1', '--tunnels', 'cioc']);
    expect(r.code, r.stderr).toBe(0);
    const claims = decodeTokenUnverified(r.stdout.trim());
    expect(claims.keyId).toBe('2027-02');
    const days = (claims.expiresAt.getTime() - Date.now()) / 86400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(90.1);
    expect(r.stderr).toMatch(/^token id [0-9a-f]{16} for agent acme-1 \(tunnels cioc\) signed with key 2027-02, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    expect(r.stderr).not.toContain(TEST_SECRET);
  });

  // Issue 12, finding 8: `ctbridge token --tunnels '<b>x</b>'` signed a token for a name no relay serves.
  it('token refuses a tunnel name that breaks the tunnel-name rule, and prints no token', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET } });
    for (const bad of ['<b>x</b>', 'ok,Upper', 'a\u202eb']) {
      const r = await runToEnd(['token', '--config', file, '--agent', 'acme-1', '--tunnels', bad]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('--tunnels');
      expect(r.stderr).toContain('expected a tunnel name of lowercase letters, digits and "-"');
    }
  });

  it('token refuses an agent id with control, bidi or zero-width characters', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET } });
    for (const bad of ['acme\u202e1', 'acme\u200b', 'x'.repeat(129)]) {
      const r = await runToEnd(['token', '--config', file, '--agent', bad, '--tunnels', 'web']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('--agent');
    }
  });

  it('CTBRIDGE_JWT_SECRET overrides auth.secret for token', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: TEST_SECRET } });
    const r = await runToEnd(['token', '--config', file, '--agent', 'a', '--tunnels', 'x'], { CTBRIDGE_JWT_SECRET: 'env-secret-0123456789abcdef-0123456789' });
    expect(r.code).toBe(0);
  });

  // Regression (review): `agent --connect` ignored the flag and started the agent.
  it('--connect without verify is an error naming the flag and the command it belongs to', async () => {
    for (const args of [['agent', '--connect'], ['agent', 'status', '--connect']]) {
      const r = await runToEnd([...args, '--config', 'agent.yaml']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('--connect belongs to `ctbridge agent verify --connect --config agent.yaml`');
    }
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

  it('relay verify refuses the template placeholder secret and says how to make one', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { auth: { secret: 'REPLACE-ME-with-32-random-characters' } });
    const r = await runToEnd(['relay', 'verify', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ctbridge: ${file}: auth.secret: expected a secret of your own, got the template's placeholder; generate one with \`openssl rand -base64 32\`\n`);
  });

  it('relay start on a port already in use: exit code 2, naming file, key and address, without a stack trace', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as AddressInfo;
      const dir = tempDir();
      const file = writeYaml(dir, 'relay.yaml', { listen: `127.0.0.1:${port}`, auth: { secret: TEST_SECRET } });
      const r = await runToEnd(['relay', '--config', file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `ctbridge: ${file}: listen: cannot listen on 127.0.0.1:${port}: the address is already in use. stop the other process using it or choose another port in listen:\n`,
      );
      expect(r.stderr).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('relay start on an address this host does not have: exit code 2, saying so', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { listen: '192.0.2.1:8080', auth: { secret: TEST_SECRET } });
    const r = await runToEnd(['relay', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: listen: cannot listen on 192.0.2.1:8080: no network interface of this host has that address`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('a missing config file is named with the reason', async () => {
    const r = await runToEnd(['relay', '--config', '/nonexistent/relay.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nonexistent/relay.yaml');
    expect(r.stderr).toMatch(/ENOENT|no such file/);
  });
});

// Issue 12, finding 9: a world-readable tokenFile, or a relay.yaml holding auth.secret, started and verified without a warning.
describe.runIf(process.platform !== 'win32')('secret files readable by other users', () => {
  it('agent verify and agent start warn about a world-readable tokenFile with the chmod to run; 0600 is quiet', async () => {
    const dir = tempDir();
    const tokenFile = join(dir, 'agent.token');
    writeFileSync(tokenFile, `${await tokenFor(['web'])}\n`);
    chmodSync(tokenFile, 0o644);
    const file = writeYaml(dir, 'agent.yaml', {
      relay: 'ws://127.0.0.1:1', tokenFile: 'agent.token', admin: { listen: 'off' },
      reconnect: { initialDelay: '100ms', maxDelay: '1s' }, tunnels: { web: { target: 'http://127.0.0.1:1' } },
    });
    const r = await runToEnd(['agent', 'verify', '--config', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`ctbridge: warning: ${tokenFile} holds the agent token (tokenFile) and is 0644, readable by group and others; run: chmod 600 ${tokenFile}\n`);

    const agent = runCli('agent', ['agent', '--config', file]);
    const line = await agent.waitForLog(`secret file readable by other users: run chmod 600 ${tokenFile}`);
    expect(line).toMatchObject({ level: 40, file: tokenFile, holds: ['the agent token (tokenFile)'], mode: 'mode 0644: readable by group and others', fix: `chmod 600 ${tokenFile}` });
    await agent.stop();

    chmodSync(tokenFile, 0o600);
    const quiet = await runToEnd(['agent', 'verify', '--config', file]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });

  it('relay verify and relay start warn about a relay.yaml holding auth.secret that others may read', async () => {
    const dir = tempDir();
    const file = writeYaml(dir, 'relay.yaml', { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, auth: { secret: TEST_SECRET } });
    chmodSync(file, 0o604);
    const r = await runToEnd(['relay', 'verify', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`ctbridge: warning: ${file} holds auth.secret and is 0604, readable by others; run: chmod 600 ${file}\n`);
    expect(r.stderr).not.toContain(TEST_SECRET);
    const relay = runCli('relay', ['relay', '--config', file]);
    expect(await relay.waitForLog(`secret file readable by other users: run chmod 600 ${file}`)).toMatchObject({ holds: ['auth.secret'] });
    await relay.waitForLog('relay listening');
    await relay.stop();
  });
});
