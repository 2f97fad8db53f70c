import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig, parseRelayConfig } from '../../../src/config/index.js';
import { agentSecretFiles, describeMode, exposedSecretFiles, exposureText, relaySecretFiles } from '../../../src/config/secret-files.js';
import { signAgentToken } from '../../../src/token.js';

const SECRET = 'test-secret-0123456789abcdef-0123456789';
const posix = process.platform !== 'win32';

function file(dir: string, name: string, text: string, mode: number): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

describe('secret files at rest (issue 12, finding 9)', () => {
  it('finds the secrets relay.yaml holds: auth.secret, keys[].secret, cluster.secret', () => {
    const raw = { auth: { keys: [{ id: 'a', secret: SECRET }] }, cluster: { secret: SECRET, peers: { static: ['127.0.0.1:7946'] } } };
    const config = parseRelayConfig(raw, '/etc/ctbridge/relay.yaml', {});
    expect(relaySecretFiles('/etc/ctbridge/relay.yaml', raw, config)).toEqual([
      { file: '/etc/ctbridge/relay.yaml', holds: 'auth.keys[0].secret' },
      { file: '/etc/ctbridge/relay.yaml', holds: 'cluster.secret' },
    ]);
    // A secret from the environment is not in the file.
    const fromEnv = parseRelayConfig({}, '/etc/ctbridge/relay.yaml', { CTBRIDGE_JWT_SECRET: SECRET });
    expect(relaySecretFiles('/etc/ctbridge/relay.yaml', {}, fromEnv)).toEqual([]);
  });

  it('finds the agent token: inline in agent.yaml, or its tokenFile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-secret-files-'));
    const token = await signAgentToken({ agentId: 'a', tunnels: ['web'], ttlMs: 3600_000, key: { secret: SECRET } });
    file(dir, 'agent.token', token, 0o600);
    const raw = { relay: 'wss://relay.example', tokenFile: 'agent.token', tunnels: { web: { target: 'http://127.0.0.1:1' } } };
    const agentYaml = join(dir, 'agent.yaml');
    const config = parseAgentConfig(raw, agentYaml, {});
    expect(agentSecretFiles(agentYaml, raw, config)).toEqual([{ file: join(dir, 'agent.token'), holds: 'the agent token (tokenFile)' }]);
    const inline = { ...raw, tokenFile: undefined, token, proxy: 'http://user:pw@proxy.corp:3128' };
    delete inline.tokenFile;
    expect(agentSecretFiles(agentYaml, inline, parseAgentConfig(inline, agentYaml, {})).map((f) => f.holds)).toEqual(['the agent token (token)', 'the proxy password (proxy)']);
  });

  it('finds the proxy password file (proxyAuth.passwordFile) next to agent.yaml', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-secret-files-'));
    file(dir, 'proxy.pass', 'N7lm-pass', 0o600);
    const raw = { relay: 'wss://relay.example', token: 'a.b.c', proxy: 'http://proxy.corp:3128', proxyAuth: { scheme: 'ntlm', username: 'CORP\\svc', passwordFile: 'proxy.pass' }, tunnels: { web: { target: 'http://127.0.0.1:1' } } };
    const agentYaml = join(dir, 'agent.yaml');
    expect(agentSecretFiles(agentYaml, raw, parseAgentConfig(raw, agentYaml, {}))).toContainEqual({ file: join(dir, 'proxy.pass'), holds: 'the proxy password (proxyAuth.passwordFile)' });
  });

  it.runIf(posix)('flags files group or others may read or write, with the chmod that fixes it; 0600 and 0400 pass', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge secret files '));
    const open = file(dir, 'open.yaml', 'x', 0o644);
    const group = file(dir, 'group.key', 'x', 0o640);
    const tight = file(dir, 'tight.yaml', 'x', 0o600);
    const ro = file(dir, 'ro.key', 'x', 0o400);
    const me = { uid: process.geteuid!(), gid: 123456 };
    const exposed = exposedSecretFiles([
      { file: open, holds: 'auth.secret' }, { file: open, holds: 'cluster.secret' },
      { file: group, holds: 'the TLS private key (tls.key)' }, { file: tight, holds: 'auth.secret' }, { file: ro, holds: 'x' },
      { file: join(dir, 'missing'), holds: 'x' },
    ], 'linux', me);
    expect(exposed).toEqual([
      { file: open, holds: ['auth.secret', 'cluster.secret'], mode: 0o644, exposed: 0o044, fix: `chmod 600 '${open}'` },
      { file: group, holds: ['the TLS private key (tls.key)'], mode: 0o640, exposed: 0o040, fix: `chmod 600 '${group}'` },
    ]);
    expect(exposureText(exposed[0]!)).toBe(`${open} holds auth.secret, cluster.secret and is 0644, readable by group and others; run: chmod 600 '${open}'`);
    expect(exposedSecretFiles([{ file: open, holds: 'x' }], 'win32')).toEqual([]);
  });

  it.runIf(posix)('accepts group read when that is how the service reads the file (root:ctbridge 0640), and then says chmod 640', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-secret-files-'));
    const group = file(dir, 'agent.yaml', 'x', 0o640);
    const world = file(dir, 'agent.token', 'x', 0o644);
    // This process as another user of the file's group.
    const me = { uid: process.geteuid!() + 1, gid: process.getegid!() };
    expect(exposedSecretFiles([{ file: group, holds: 'a' }, { file: world, holds: 'b' }], 'linux', me)).toEqual([
      { file: world, holds: ['b'], mode: 0o644, exposed: 0o004, fix: `chmod 640 ${world}` },
    ]);
    expect(describeMode(0o644, 0o004)).toBe('mode 0644: readable by others');
  });

  it('describes modes for people', () => {
    expect(describeMode(0o644)).toBe('mode 0644: readable by group and others');
    expect(describeMode(0o640)).toBe('mode 0640: readable by group');
    expect(describeMode(0o606)).toBe('mode 0606: readable and writable by others');
  });
});
