/**
 * The agent on a corporate network: it reaches the relay only through an
 * HTTP forward proxy that wants Basic credentials.
 */
import { expect, it } from 'vitest';
import { startBackend } from '../helpers/backend.js';
import { cleanUpAfterEach } from '../helpers/cleanup.js';
import { statusOf } from '../helpers/http.js';
import { needs } from '../helpers/system.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const closeAfter = cleanUpAfterEach();

const tinyproxy = needs('tinyproxy', 'the corporate forward proxy the agent goes through');

tinyproxy.describe('agent through a forward proxy', () => {
  it('connects through the proxy with Basic credentials from HTTPS_PROXY and serves', async () => {
    const proxy = closeAfter(await startTinyproxy('corp', 'pr0xy-pass', tinyproxy.path));
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const proxyUrl = `http://corp:pr0xy-pass@127.0.0.1:${proxy.port}`;
    const agent = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: backend.url } },
      env: { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl },
    });
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
    expect(proxy.log()).toMatch(/CONNECT/);
    expect(agent.allOutput).not.toContain('pr0xy-pass');
  });

  it('connects through the proxy named in agent.yaml', async () => {
    const proxy = closeAfter(await startTinyproxy('corp', 'pr0xy-pass', tinyproxy.path));
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: backend.url } },
      extra: { proxy: `http://corp:pr0xy-pass@127.0.0.1:${proxy.port}` },
    });
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
  });

  it('wrong proxy credentials give a log line that says so, without the password', async () => {
    const proxy = closeAfter(await startTinyproxy('corp', 'pr0xy-pass', tinyproxy.path));
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const agent = await startAgentProcess({
      relayUrl: relay.url,
      tunnels: { ucws: { target: 'http://127.0.0.1:9' } },
      extra: { proxy: `http://corp:wrong-pass@127.0.0.1:${proxy.port}` },
      waitReady: false,
    });
    const line = await agent.waitForLog((l) => l.code === 'CTB_PROXY_AUTH');
    expect(JSON.stringify(line)).toMatch(/407|proxy authentication/i);
    expect(agent.allOutput).not.toContain('wrong-pass');
  });
});
