/**
 * Agents with bad tokens are refused with a close code and a reason that
 * both sides log; no request is routed to them.
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


describe('agent authentication', () => {
  it('refuses an expired token and says so on both sides', async () => {
    const token = await craft({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const { agentLine, agentOutput } = await refused(token);
    expect(JSON.stringify(agentLine)).toMatch(/expired/);
    expect(agentOutput).toMatch(/ctbridge token/); // tells the admin what to do
    expect(agentOutput).not.toContain(token);
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'expired');
  });

  it('refuses a tampered token', async () => {
    const token = await tokenFor(['cioc']);
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.tunnels = ['cioc', 'ucws'];
    const tampered = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    const { agentLine } = await refused(tampered);
    expect(JSON.stringify(agentLine)).toMatch(/signature/i);
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'bad_signature');
  });

  it('refuses a token signed with another secret', async () => {
    const { agentLine } = await refused(await craft({}, new TextEncoder().encode('another-secret-0123456789abcdef-012345')));
    expect(JSON.stringify(agentLine)).toMatch(/signature/i);
  });

  it('refuses a token for another audience', async () => {
    const { agentLine } = await refused(await craft({ aud: 'other-relay' }));
    expect(JSON.stringify(agentLine)).toMatch(/audience/);
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'wrong_audience');
  });

  it('refuses a JWT-shaped token that is not a JWT', async () => {
    const { agentLine } = await refused('eyJub3Q.YS1qd3Q.c2ln');
    expect(JSON.stringify(agentLine)).toMatch(/token/);
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'malformed');
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
