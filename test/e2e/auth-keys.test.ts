/**
 * Key rotation and revocation through the CLI, as an operator does them:
 * tokens from an older key keep working while relay.yaml lists it after the
 * new one; a token naming a key the relay does not have, and a revoked agent
 * or token id, are refused with the reason in both logs.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runToEnd, stopAll, tempDir, writeYaml, type LogLine } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, tokenFor } from '../helpers/tunnel.js';

const NEW = 'new-key-secret-0123456789abcdef-0123456789';
const OLD = 'old-key-secret-0123456789abcdef-0123456789';
const ROTATED = { keys: [{ id: '2027-02', secret: NEW }, { id: '2026-11', secret: OLD }] };

let backend: Backend | undefined;
afterEach(async () => {
  await stopAll();
  await backend?.close();
  backend = undefined;
});

/** `ctbridge token` against a relay.yaml with this auth section: the token, and the id it printed on stderr. */
async function issue(auth: unknown, agent: string, tunnels: string): Promise<{ token: string; tokenId: string; stderr: string }> {
  const config = writeYaml(tempDir(), 'relay.yaml', { auth });
  const r = await runToEnd(['token', '--config', config, '--agent', agent, '--tunnels', tunnels]);
  expect(r.code, r.stderr).toBe(0);
  const tokenId = /^token id ([0-9a-f]{16}) /.exec(r.stderr)?.[1];
  expect(tokenId, r.stderr).toBeDefined();
  return { token: r.stdout.trim(), tokenId: tokenId!, stderr: r.stderr };
}

const refusedByRelay = (l: LogLine) => l.msg === 'agent refused: bad token';

describe('key rotation', () => {
  it('an agent whose token the old key signed still connects and serves when relay.yaml lists [new, old]', async () => {
    backend = await startBackend();
    const { token, stderr } = await issue({ keys: [{ id: '2026-11', secret: OLD }] }, 'acme-old', 'ucws');
    expect(stderr).toMatch(/ signed with key 2026-11, /);
    const relay = await startRelayProcess({ auth: ROTATED, tunnels: { ucws: {} } });
    const agent = await startAgentProcess({ relayUrl: relay.url, token, tunnels: { ucws: { target: backend.url } } });
    expect(await agent.waitForLog('agent token')).toMatchObject({ agentId: 'acme-old', keyId: '2026-11' });
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-old');
    const res = await fetch(`${relay.url}/t/ucws/hello`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it('a token from before key ids (no kid) is tried against every key', async () => {
    const relay = await startRelayProcess({ auth: ROTATED, tunnels: { ucws: {} } });
    await startAgentProcess({ relayUrl: relay.url, token: await tokenFor(['ucws'], 'acme-legacy', 3600_000, OLD), tunnels: { ucws: { target: 'http://127.0.0.1:9' } } });
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-legacy');
  });

  it('a token naming a key the relay does not have is refused, and the agent log names the key and the known ids', async () => {
    const relay = await startRelayProcess({ auth: ROTATED, tunnels: { ucws: {} } });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ tunnels: ['ucws'] }).setProtectedHeader({ alg: 'HS256', kid: '2025-01' }).setSubject('acme-1')
      .setIssuer('ctbridge').setAudience('ctbridge').setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(OLD));
    const agent = await startAgentProcess({ relayUrl: relay.url, token, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, waitReady: false });
    const line = await agent.waitForLog('relay refused the agent token');
    expect(line).toMatchObject({
      code: 'CTB_TOKEN_INVALID',
      reason: 'agent token names key "2025-01", which this relay does not have (key ids in relay.yaml: 2027-02, 2026-11)',
    });
    const relayLine = await relay.proc.waitForLog(refusedByRelay);
    expect(relayLine).toMatchObject({ reason: 'unknown_key', err: { code: 'CTB_TOKEN_INVALID', message: line.reason } });
    expect(agent.allOutput + relay.proc.allOutput).not.toContain(token);
  });
});

describe('revocation', () => {
  it('a revoked agent id is refused at connect, with the reason in both logs', async () => {
    const relay = await startRelayProcess({ auth: { secret: OLD, revoked: { agents: ['acme-bad'] } }, tunnels: { ucws: {} } });
    const token = await tokenFor(['ucws'], 'acme-bad', 3600_000, OLD);
    const agent = await startAgentProcess({ relayUrl: relay.url, token, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, waitReady: false });
    const reason = "agent 'acme-bad' is revoked in auth.revoked.agents of relay.yaml";
    const line = await agent.waitForLog('relay refused the agent token');
    expect(line).toMatchObject({ code: 'CTB_TOKEN_INVALID', closeCode: 4401, reason });
    expect(String(line.hint)).toMatch(/revoked/);
    expect(await relay.proc.waitForLog(refusedByRelay)).toMatchObject({ reason: 'revoked', err: { code: 'CTB_TOKEN_INVALID', message: reason } });
    expect(relay.proc.countLogs('agent connected')).toBe(0);
  });

  it('a revoked token id (as `ctbridge token` printed it) is refused; another token of the same agent connects', async () => {
    const [revoked, fresh] = await Promise.all([issue({ secret: OLD }, 'acme-1', 'ucws'), issue({ secret: OLD }, 'acme-1', 'ucws')]);
    expect(fresh.tokenId).not.toBe(revoked.tokenId);
    const relay = await startRelayProcess({ auth: { secret: OLD, revoked: { tokens: [revoked.tokenId] } }, tunnels: { ucws: {} } });
    const refused = await startAgentProcess({ relayUrl: relay.url, token: revoked.token, tunnels: { ucws: { target: 'http://127.0.0.1:9' } }, waitReady: false });
    expect(await refused.waitForLog('relay refused the agent token')).toMatchObject({
      reason: `token ${revoked.tokenId} of agent 'acme-1' is revoked in auth.revoked.tokens of relay.yaml`,
    });
    await refused.stop();
    await startAgentProcess({ relayUrl: relay.url, token: fresh.token, tunnels: { ucws: { target: 'http://127.0.0.1:9' } } });
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-1');
  });
});
