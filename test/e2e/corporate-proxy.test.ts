/**
 * The agent behind a real Squid that demands NTLM (its ntlm_fake_auth helper
 * runs the whole three-message handshake) or Basic proxy authentication.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { startBackend } from '../helpers/backend.js';
import { cleanUpAfterEach } from '../helpers/cleanup.js';
import { statusOf } from '../helpers/http.js';
import { stopAll, tempDir } from '../helpers/processes.js';
import { startSquid } from '../helpers/squid.js';
import { needs } from '../helpers/system.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const closeAfter = cleanUpAfterEach();

function passwordFile(password: string): string {
  const file = join(tempDir(), 'proxy-password');
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return file;
}

const relayPort = (url: string) => Number(new URL(url).port);

// .ci/run installs squid; on a machine without it this says so instead of passing silently.
const squidPackage = needs('squid', 'the corporate proxy that asks for NTLM or Basic');

squidPackage.describe('agent through Squid with NTLM or Basic proxy authentication', () => {
  it('completes the NTLM handshake with Squid and serves through the tunnel; the password is never logged', async () => {
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const squid = closeAfter(await startSquid({ auth: ['ntlm', 'basic'], connectPorts: [relayPort(relay.url)] }, squidPackage.path));
    const agent = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: backend.url } },
      extra: { proxy: squid.url, proxyAuth: { scheme: 'ntlm', username: 'CORP\\svc-ctbridge', passwordFile: passwordFile('Ntlm-S3cret!') } },
    });
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
    // Squid answered the negotiate message with its challenge (407) before letting the tunnel through: it did demand NTLM.
    expect(squid.accessLog()).toMatch(/TCP_DENIED\/407 .*CONNECT 127\.0\.0\.1:\d+/);
    expect(agent.allOutput).not.toContain('Ntlm-S3cret');
  });

  it('without credentials: names the schemes Squid asks for, who answered, and how to set NTLM', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const squid = closeAfter(await startSquid({ auth: ['ntlm', 'basic'], connectPorts: [relayPort(relay.url)] }, squidPackage.path));
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, extra: { proxy: squid.url }, waitReady: false });
    const line = await agent.waitForLog((l) => l.code === 'CTB_PROXY_AUTH');
    expect(line).toMatchObject({ status: 407, proxyOffers: 'NTLM, Basic', detail: 'the agent sent no proxy credentials; the proxy asks for NTLM or Basic' });
    expect(String(line.answeredBy)).toMatch(/^forward proxy 127\.0\.0\.1:\d+ \(squid\/[\d.]+\); the relay was not reached$/);
    expect(String(line.via)).toMatch(/squid/);
    expect(String(line.hint)).toContain('proxyAuth: {scheme: ntlm');
  });

  it('wrong scheme: Basic credentials to a Squid that only asks for NTLM say which scheme to use', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const squid = closeAfter(await startSquid({ auth: ['ntlm'], connectPorts: [relayPort(relay.url)] }, squidPackage.path));
    const agent = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: 'http://127.0.0.1:9' } },
      extra: { proxy: `http://corp:basic-secret@127.0.0.1:${squid.port}` },
      waitReady: false,
    });
    const line = await agent.waitForLog((l) => l.code === 'CTB_PROXY_AUTH');
    expect(line).toMatchObject({ status: 407, proxyOffers: 'NTLM', detail: 'the agent sent Basic credentials, but the proxy asks for NTLM' });
    expect(String(line.hint)).toContain('scheme: ntlm');
    expect(agent.allOutput).not.toContain('basic-secret');
  });

  it('Basic through Squid works (proxyAuth with CTBRIDGE_PROXY_PASSWORD), and a wrong password says the credentials were rejected', async () => {
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const squid = closeAfter(await startSquid({ auth: ['basic'], basic: { user: 'corp', pass: 'B4sic-pass' }, connectPorts: [relayPort(relay.url)] }, squidPackage.path));
    const good = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: backend.url } },
      extra: { proxy: squid.url, proxyAuth: { scheme: 'basic', username: 'corp' } },
      env: { CTBRIDGE_PROXY_PASSWORD: 'B4sic-pass' },
    });
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
    expect(good.allOutput).not.toContain('B4sic-pass');
    await stopAll();

    const bad = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: backend.url } },
      extra: { proxy: squid.url, proxyAuth: { scheme: 'basic', username: 'corp', passwordFile: passwordFile('not-the-pass') } },
      waitReady: false,
    });
    const line = await bad.waitForLog((l) => l.code === 'CTB_PROXY_AUTH');
    expect(line).toMatchObject({ status: 407, detail: 'the proxy rejected the Basic credentials of proxyAuth' });
    expect(bad.allOutput).not.toContain('not-the-pass');
  });
});
