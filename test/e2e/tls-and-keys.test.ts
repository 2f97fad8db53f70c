/**
 * A relay serving wss:// with its own certificate, an agent that trusts it
 * through `ca:` (as behind a TLS-inspecting proxy), and agent tokens signed
 * with a key pair where the relay holds only the public key.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { statusOf } from '../helpers/http.js';
import { runCli, runToEnd, stopAll, tempDir, writeYaml } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/config/tls/${name}`, import.meta.url));
const CERT = fixture('relay.crt');

let backend: Backend | undefined;
afterEach(async () => {
  await stopAll();
  await backend?.close();
});

describe('TLS and key pairs', () => {
  it('agent reaches a wss:// relay whose certificate it trusts through ca:', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tls: { cert: CERT, key: fixture('relay.key') }, tunnels: { ucws: {} } });
    const wss = `https://127.0.0.1:${relay.port}`;
    await startAgentProcess({ relayUrl: wss, tunnels: { ucws: { target: backend.url } }, extra: { ca: CERT } });
    expect(await statusOf(`${wss}/t/ucws/x`, { ca: readFileSync(CERT) })).toBe(200);
  });

  it('without ca: the agent says it cannot verify the relay certificate and what to set', async () => {
    const relay = await startRelayProcess({ tls: { cert: CERT, key: fixture('relay.key') }, tunnels: { ucws: {} } });
    const agent = await startAgentProcess({ relayUrl: `https://127.0.0.1:${relay.port}`, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, waitReady: false });
    const line = await agent.waitForLog((l) => typeof l.msg === 'string' && /certificate/.test(l.msg));
    expect(JSON.stringify(line)).toMatch(/ca/);
  });

  it('relay verifies EdDSA tokens with only the public key; ctbridge token signs with the private key', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ auth: { publicKey: fixture('token-verify.pub') }, tunnels: { ucws: {} } });
    const dir = tempDir();
    const signer = writeYaml(dir, 'signer.yaml', { auth: { publicKey: fixture('token-verify.pub'), privateKey: fixture('token-signing.key') } });
    const issued = await runToEnd(['token', '--config', signer, '--agent', 'keypair-1', '--tunnels', 'ucws', '--ttl', '1d']);
    expect(issued.code, issued.stderr).toBe(0);
    await startAgentProcess({ relayUrl: relay.url, token: issued.stdout.trim(), tunnels: { ucws: { target: backend.url } } });
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'keypair-1');
  });

  it('a token signed with another private key is refused', async () => {
    const relay = await startRelayProcess({ auth: { publicKey: fixture('token-verify.pub') }, tunnels: { ucws: {} } });
    const dir = tempDir();
    const signer = writeYaml(dir, 'relay.yaml', { auth: { secret: 'an-hs256-secret-not-the-key-pair' } });
    const issued = await runToEnd(['token', '--config', signer, '--agent', 'x', '--tunnels', 'ucws']);
    const agent = runCli('agent', ['agent', '--config', writeYaml(dir, 'agent.yaml', { relay: relay.url.replace('http', 'ws'), token: issued.stdout.trim(), tunnels: { ucws: { target: 'http://127.0.0.1:9' } } })]);
    await agent.waitForLog('relay refused the agent token');
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token');
  });
});
