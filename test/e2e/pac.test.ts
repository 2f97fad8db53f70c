/**
 * proxy: pac+http://… / pac+file://… — the PAC file decides, per URL, which
 * proxy the agent uses for the relay: here a PAC served by a local HTTP
 * server sends the relay's host through tinyproxy and everything else DIRECT.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { startBackend } from '../helpers/backend.js';
import { cleanUpAfterEach } from '../helpers/cleanup.js';
import { statusOf } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { tempDir } from '../helpers/processes.js';
import { needs } from '../helpers/system.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const closeAfter = cleanUpAfterEach();

let pacScript = '';
async function servePac(script: string): Promise<string> {
  pacScript = script;
  const pacServer = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig' }).end(pacScript));
  closeAfter({
    close: () => {
      pacServer.closeAllConnections();
      return new Promise((r) => pacServer.close(r));
    },
  });
  pacServer.listen(0, '127.0.0.1');
  await once(pacServer, 'listening');
  return `http://127.0.0.1:${(pacServer.address() as AddressInfo).port}/proxy.pac`;
}


const basic = { scheme: 'basic', username: 'corp' };
const env = { CTBRIDGE_PROXY_PASSWORD: 'pr0xy-pass' };

const tinyproxy = needs('tinyproxy', 'the proxy a PAC file names');

tinyproxy.describe('agent with a PAC file', () => {
  it('a served PAC sends the relay host through the proxy (everything else DIRECT); its answer is logged', async () => {
    const proxy = closeAfter(await startTinyproxy('corp', 'pr0xy-pass', tinyproxy.path));
    const backend = closeAfter(await startBackend());
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const pac = await servePac(`function FindProxyForURL(url, host) {
      if (host === "127.0.0.1" && url.indexOf(":${relay.port}/") > 0) return "PROXY 127.0.0.1:${proxy.port}";
      return "DIRECT";
    }`);
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } }, extra: { proxy: `pac+${pac}`, proxyAuth: basic }, env });
    const line = await agent.waitForLog('PAC answer for the relay');
    expect(line.answer).toBe(`PROXY 127.0.0.1:${proxy.port}`);
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
    expect(proxy.log()).toMatch(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${relay.port}`));

    // IT changes the PAC file; a reload (SIGHUP) fetches it again and logs the new answer.
    pacScript = 'function FindProxyForURL(url, host) { return "DIRECT"; }';
    agent.child.kill('SIGHUP');
    const again = await agent.waitForLog((l) => l.msg === 'PAC answer for the relay' && l.answer === 'DIRECT');
    expect(again.pac).toBe(pac);
  });

  it('a PAC that throws gives a clear error naming the PAC file', async () => {
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const pac = await servePac('function FindProxyForURL(url, host) { throw new Error("wpad broken by IT"); }');
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, extra: { proxy: `pac+${pac}` }, waitReady: false });
    const line = await agent.waitForLog('proxy auto-configuration (PAC) failed');
    expect(line.code).toBe('CTB_RELAY_UNREACHABLE');
    expect(String(line.detail)).toContain('proxy.pac failed for http://127.0.0.1:');
    expect(String(line.detail)).toContain('wpad broken by IT');
  });

  it('pac+file://: two proxies, the first down: the agent falls back to the second', async () => {
    const proxy = closeAfter(await startTinyproxy('corp', 'pr0xy-pass', tinyproxy.path));
    const backend = closeAfter(await startBackend());
    const [down] = await freePorts(1);
    const relay = await startRelayProcess({ tunnels: { ucws: {} } });
    const file = join(tempDir(), 'proxy.pac');
    writeFileSync(file, `function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:${down}; PROXY 127.0.0.1:${proxy.port}"; }`);
    await startAgentProcess({ relayUrl: relay.url, tunnels: { ucws: { target: backend.url } }, extra: { proxy: `pac+${pathToFileURL(file).href}`, proxyAuth: basic }, env });
    expect(await statusOf(`${relay.url}/t/ucws/hello`)).toBe(200);
    expect(proxy.log()).toMatch(/CONNECT/);
  });
});
