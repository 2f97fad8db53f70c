/**
 * Key rotation and revocation through the CLI, as an operator does them:
 * tokens from an older key keep working while relay.yaml lists it after the
 * new one; a token naming a key the relay does not have, and a revoked agent
 * or token id, are refused: the agent hears the public sentence and a request
 * id (never the relay's key ids or config keys), the relay logs the reason
 * under that id.
 *
 * One relay serves every case: relay.yaml lists [new, old] keys and revokes
 * agent `acme-bad` and one token of `acme-1` issued beforehand.
 */
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runToEnd, stopAll, tempDir, writeYaml, type CtbridgeProcess, type LogLine } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

const NEW = 'new-key-secret-0123456789abcdef-0123456789';
const OLD = 'old-key-secret-0123456789abcdef-0123456789';
const OLD_ONLY = { keys: [{ id: '2026-11', secret: OLD }] };
const NOWHERE = { ucws: { target: 'http://127.0.0.1:9' } };

interface Issued { token: string; tokenId: string; stderr: string }

/** `ctbridge token` against a relay.yaml with this auth section: the token, and the id it printed on stderr. */
async function issue(auth: unknown, agent: string, tunnels: string): Promise<Issued> {
  const config = writeYaml(tempDir(), 'relay.yaml', { auth });
  const r = await runToEnd(['token', '--config', config, '--agent', agent, '--tunnels', tunnels]);
  expect(r.code, r.stderr).toBe(0);
  const tokenId = /^token id ([0-9a-f]{16}) /.exec(r.stderr)?.[1];
  expect(tokenId, r.stderr).toBeDefined();
  return { token: r.stdout.trim(), tokenId: tokenId!, stderr: r.stderr };
}

let relay: RelayInfo;
let byOldKey: Issued;
let revokedToken: Issued;
let freshToken: Issued;
let backend: Backend;
const agents: CtbridgeProcess[] = [];

beforeAll(async () => {
  [byOldKey, revokedToken, freshToken, backend] = await Promise.all([
    issue(OLD_ONLY, 'acme-old', 'ucws'),
    issue(OLD_ONLY, 'acme-1', 'ucws'),
    issue(OLD_ONLY, 'acme-1', 'ucws'),
    startBackend(),
  ]);
  relay = await startRelayProcess({
    auth: {
      keys: [{ id: '2027-02', secret: NEW }, ...OLD_ONLY.keys],
      revoked: { agents: ['acme-bad'], tokens: [revokedToken.tokenId] },
    },
    tunnels: { ucws: {} },
  });
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});
afterAll(async () => {
  await stopAll();
  await backend?.close();
});

async function agent(token: string, tunnels: Record<string, Record<string, unknown>> = NOWHERE, waitReady = true): Promise<CtbridgeProcess> {
  const p = await startAgentProcess({ relayUrl: relay.url, token, tunnels, waitReady });
  agents.push(p);
  return p;
}

const refusedByRelay = (reason: string, requestId?: unknown) => (l: LogLine) =>
  l.msg === 'agent refused: bad token' && (l.err as { message?: string } | undefined)?.message === reason && (requestId === undefined || l.requestId === requestId);

/** What an agent whose token the relay did not verify hears: the public sentence and a request id, nothing of relay.yaml. */
const PUBLIC_REFUSAL = /^The relay refused the on-premise agent for this tunnel; give the request id to the operator \(request id [0-9a-f]{16}\)$/;

describe('key rotation', () => {
  it('an agent whose token the old key signed still connects and serves when relay.yaml lists [new, old]', async () => {
    expect(byOldKey.stderr).toMatch(/ signed with key 2026-11, /);
    const a = await agent(byOldKey.token, { ucws: { target: backend.url } });
    expect(await a.waitForLog('agent token')).toMatchObject({ agentId: 'acme-old', keyId: '2026-11', tokenId: byOldKey.tokenId });
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-old');
    const res = await fetch(`${relay.url}/t/ucws/hello`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it('a token from before key ids (no kid) is tried against every key', async () => {
    await agent(await tokenFor(['ucws'], 'acme-legacy', 3600_000, OLD));
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-legacy');
  });

  it('a token naming a key the relay does not have is refused; the relay log line under the request id the agent logs names the key and the known ids', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ tunnels: ['ucws'] }).setProtectedHeader({ alg: 'HS256', kid: '2025-01' }).setSubject('acme-kid')
      .setIssuer('ctbridge').setAudience('ctbridge').setIssuedAt(now).setExpirationTime(now + 3600).sign(new TextEncoder().encode(OLD));
    const a = await agent(token, NOWHERE, false);
    const reason = 'agent token names key "2025-01", which this relay does not have (key ids in relay.yaml: 2027-02, 2026-11)';
    const told = await a.waitForLog('relay refused the agent token');
    expect(told).toMatchObject({ code: 'CTB_TOKEN_INVALID', closeCode: 4401, reason: expect.stringMatching(PUBLIC_REFUSAL), requestId: expect.any(String) });
    expect(String(told.hint)).toContain(`request id ${told.requestId}`);
    expect(await relay.proc.waitForLog(refusedByRelay(reason, told.requestId))).toMatchObject({ reason: 'unknown_key', err: { code: 'CTB_TOKEN_INVALID' } });
    // The relay's key ids stay on the relay.
    expect(a.allOutput).not.toMatch(/2027-02|2026-11/);
    expect(a.allOutput + relay.proc.allOutput).not.toContain(token);
  });
});

describe('revocation', () => {
  it('a revoked agent id is refused at connect; the agent hears no relay.yaml key, the relay logs the reason under the request id', async () => {
    const a = await agent(await tokenFor(['ucws'], 'acme-bad', 3600_000, OLD), NOWHERE, false);
    const reason = "agent 'acme-bad' is revoked in auth.revoked.agents of relay.yaml";
    const line = await a.waitForLog('relay refused the agent token');
    expect(line).toMatchObject({ code: 'CTB_TOKEN_INVALID', closeCode: 4401, reason: expect.stringMatching(PUBLIC_REFUSAL) });
    expect(String(line.hint)).toMatch(new RegExp(`^give the relay operator request id ${String(line.requestId)}: .*revoked`));
    expect(a.allOutput).not.toContain('auth.revoked');
    expect(await relay.proc.waitForLog(refusedByRelay(reason, line.requestId))).toMatchObject({ reason: 'revoked', err: { code: 'CTB_TOKEN_INVALID' } });
    expect(relay.proc.lines.some((l) => l.msg === 'agent connected' && l.agentId === 'acme-bad')).toBe(false);
  });

  it('a revoked token id (as `ctbridge token` printed it) is refused; another token of the same agent connects', async () => {
    expect(freshToken.tokenId).not.toBe(revokedToken.tokenId);
    const refused = await agent(revokedToken.token, NOWHERE, false);
    const reason = `token ${revokedToken.tokenId} of agent 'acme-1' is revoked in auth.revoked.tokens of relay.yaml`;
    const told = await refused.waitForLog('relay refused the agent token');
    expect(told).toMatchObject({ reason: expect.stringMatching(PUBLIC_REFUSAL) });
    expect(refused.allOutput).not.toContain('auth.revoked');
    await relay.proc.waitForLog(refusedByRelay(reason, told.requestId));
    await agent(freshToken.token);
    await relay.proc.waitForLog((l) => l.msg === 'agent connected' && l.agentId === 'acme-1');
  });
});
