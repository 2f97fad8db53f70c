/**
 * `ctbridge agent verify --connect` against the corporate set-ups: each run
 * prints its steps with ✓/✗, and the step that fails is the one named.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAll, runToEnd, tempDir, writeYaml } from '../helpers/processes.js';
import { startSquid } from '../helpers/squid.js';
import { needs } from '../helpers/system.js';
import type { ForwardProxy } from '../helpers/tinyproxy.js';
import { startRelayProcess, tokenFor } from '../helpers/tunnel.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/config/tls/${name}`, import.meta.url));

let proxy: ForwardProxy | undefined;
afterEach(async () => {
  await stopAll();
  await proxy?.close();
  proxy = undefined;
});

async function verify(relayUrl: string, extra: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, token?: string) {
  const file = writeYaml(tempDir(), 'agent.yaml', {
    relay: relayUrl.replace(/^http/, 'ws'),
    token: token ?? (await tokenFor(['ucws'])),
    tunnels: { ucws: { target: 'http://127.0.0.1:9' } },
    timeouts: { connect: '5s' },
    ...extra,
  });
  const r = await runToEnd(['agent', 'verify', '--connect', '--config', file], env);
  const failed = /^✗ (\S+(?: auth)?)/m.exec(r.stdout)?.[1];
  return { ...r, failed };
}

const squidPackage = needs('squid', 'the NTLM proxy that verify --connect authenticates with');

describe('agent verify --connect', () => {
  it('direct to a relay: every step passes, exit 0', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const r = await verify(relay.url, { proxy: 'none' });
    expect(r.stdout).toMatch(/✓ proxy\s+DIRECT/);
    expect(r.stdout).toMatch(/✓ websocket\s+the relay accepted the token/);
    expect(r.failed, r.stdout).toBeUndefined();
    expect(r.code).toBe(0);
  });

  it('a relay certificate the configured trust does not cover: the tls step fails and names ca:', async () => {
    const relay = await startRelayProcess({ tls: { cert: fixture('relay.crt'), key: fixture('relay.key') }, tunnels: { ucws: {} } });
    const r = await verify(`https://127.0.0.1:${relay.port}`, { proxy: 'none' });
    expect(r.failed).toBe('tls');
    expect(r.stdout).toMatch(/what to do: .*ca:/);
    expect(r.code).toBe(1);
    const trusted = await verify(`https://127.0.0.1:${relay.port}`, { proxy: 'none', ca: fixture('relay.crt') });
    expect(trusted.stdout).toMatch(/✓ tls\s+certificate for localhost/);
    expect(trusted.code, trusted.stdout + trusted.stderr).toBe(0);
  });

  it('a token the relay refuses: the websocket step fails', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const r = await verify(relay.url, { proxy: 'none' }, {}, await tokenFor(['ucws'], 'acme-1', 3600_000, 'another-secret-0123456789abcdef-0123456789'));
    expect(r.failed, r.stdout + r.stderr).toBe('websocket');
    expect(r.stdout).toContain('relay refused the agent token');
  });

  it('a PAC file that throws: the proxy step fails', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const dir = tempDir();
    const pac = writeYaml(dir, 'proxy.pac', 'x');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(pac, 'function FindProxyForURL() { throw new Error("broken pac"); }');
    const r = await verify(relay.url, { proxy: `pac+file://${pac}` });
    expect(r.failed).toBe('proxy');
    expect(r.stdout).toContain('broken pac');
  });

  squidPackage.describe('through Squid', () => {
    it('NTLM without credentials: the proxy auth step fails naming NTLM; with them every step passes', async () => {
      const relay = await startRelayProcess({ tunnels: { ucws: {} } });
      proxy = await startSquid({ auth: ['ntlm'], connectPorts: [relay.port] }, squidPackage.path);
      const r = await verify(relay.url, { proxy: proxy.url });
      expect(r.stdout).toMatch(/✓ connect\s+TCP to proxy 127\.0\.0\.1:/);
      expect(r.failed).toBe('proxy auth');
      expect(r.stdout).toContain('proxyOffers: NTLM');
      expect(r.stdout).toMatch(/what to do: set proxyAuth: \{scheme: ntlm/);

      const good = await verify(relay.url, { proxy: proxy.url, proxyAuth: { scheme: 'ntlm', username: 'CORP\\svc' } }, { CTBRIDGE_PROXY_PASSWORD: 'verify-S3cret' });
      expect(good.stdout).toMatch(/✓ proxy auth\s+NTLM accepted/);
      expect(good.failed, good.stdout).toBeUndefined();
      expect(good.stdout + good.stderr).not.toContain('verify-S3cret');
    });

    it('a proxy that is down: the connect step fails', async () => {
      const relay = await startRelayProcess({ tunnels: { ucws: {} } });
      proxy = await startSquid({ auth: [], connectPorts: [relay.port] }, squidPackage.path);
      const url = proxy.url;
      await proxy.close();
      const r = await verify(relay.url, { proxy: url });
      expect(r.failed).toBe('connect');
      expect(r.stdout).toContain('connection refused by forward proxy');
    });
  });
});
