/**
 * Agents with bad tokens are refused with a close code; no request is routed
 * to them. The agent hears only the public sentence and a request id (it has
 * proved nothing); the relay logs why under that id, and the agent's log
 * says what to do with it.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf } from '../helpers/http.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, TEST_SECRET, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

let relay: RelayInfo;
beforeAll(async () => {
  relay = await startRelayProcess({ tunnels: { cioc: {}, ucws: {} } });
});
afterAll(stopAll);

const key = new TextEncoder().encode(TEST_SECRET);
async function craft(claims: { exp?: number; aud?: string; iss?: string; tunnels?: string[] }, secret = key): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tunnels: claims.tunnels ?? ['cioc'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('acme-1')
    .setIssuedAt(now - 7200)
    .setIssuer(claims.iss ?? 'ctbridge')
    .setAudience(claims.aud ?? 'ctbridge')
    .setExpirationTime(claims.exp ?? now + 3600)
    .sign(secret);
}

async function refused(token: string, tunnels: Record<string, Record<string, unknown>> = { cioc: { target: 'http://127.0.0.1:9' } }) {
  const agent = await startAgentProcess({ relayUrl: relay.url, token, tunnels, waitReady: false });
  const line = await agent.waitForLog((l) => typeof l.msg === 'string' && /^relay refused/.test(l.msg));
  await agent.stop();
  return { agentLine: line, agentOutput: agent.allOutput };
}

/** The relay's line for a refused token: the failure reason, under the request id the agent logged. */
async function relayRefusal(agentLine: Record<string, unknown>, reason: string): Promise<void> {
  expect(agentLine).toMatchObject({ code: 'CTB_TOKEN_INVALID', closeCode: 4401, requestId: expect.stringMatching(/^[0-9a-f]{16}$/) });
  expect(String(agentLine.reason)).toMatch(/^The relay refused the on-premise agent for this tunnel; .* \(request id [0-9a-f]{16}\)$/);
  await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === reason && l.requestId === agentLine.requestId);
}

describe('agent authentication', () => {
  it('refuses an expired token and says so on both sides', async () => {
    const token = await craft({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const { agentLine, agentOutput } = await refused(token);
    // The agent knows its own token's expiry: it says so without the relay's word.
    expect(String(agentLine.hint)).toMatch(/^this agent's token expired at .*ctbridge token/);
    expect(agentOutput).not.toContain(token);
    await relayRefusal(agentLine, 'expired');
  });

  it('refuses a tampered token', async () => {
    const token = await tokenFor(['cioc']);
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.tunnels = ['cioc', 'ucws'];
    const tampered = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    const { agentLine } = await refused(tampered);
    expect(String(agentLine.hint)).toContain(`request id ${String(agentLine.requestId)}`);
    await relayRefusal(agentLine, 'bad_signature');
  });

  it('refuses a token signed with another secret', async () => {
    const { agentLine } = await refused(await craft({}, new TextEncoder().encode('another-secret-0123456789abcdef-012345')));
    await relayRefusal(agentLine, 'bad_signature');
  });

  it('refuses a token for another audience', async () => {
    const { agentLine, agentOutput } = await refused(await craft({ aud: 'other-relay' }));
    // The relay's own audience stays on the relay.
    expect(agentOutput).not.toContain('this relay expects');
    await relayRefusal(agentLine, 'wrong_audience');
  });

  it('refuses a JWT-shaped token that is not a JWT', async () => {
    const { agentLine } = await refused('eyJub3Q.YS1qd3Q.c2ln');
    expect(String(agentLine.hint)).toMatch(/ctbridge token/);
    await relayRefusal(agentLine, 'malformed');
  });

  it('an agent whose token is not even JWT-shaped does not start, and says why', async () => {
    const agent = await startAgentProcess({ relayUrl: relay.url, token: 'not-a-jwt', tunnels: { cioc: { target: 'http://127.0.0.1:9' } }, waitReady: false });
    expect(await agent.exited).toBe(2);
    expect(agent.stderr).toMatch(/agent\.yaml: token: expected a token/);
    expect(agent.stderr).not.toContain('not-a-jwt');
  });

  it('refuses a tunnel the token does not list, and routes nothing to it', async () => {
    const token = await tokenFor(['cioc']);
    const { agentLine } = await refused(token, { cioc: { target: 'http://127.0.0.1:9' }, ucws: { target: 'http://127.0.0.1:9' } });
    expect(JSON.stringify(agentLine)).toMatch(/ucws/);
    await relay.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('agent refused: tunnel'));
    expect(await statusOf(`${relay.url}/t/ucws/x`)).toBe(502);
  });
});
