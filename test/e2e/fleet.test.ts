/**
 * Fleet control with real processes: a token's expiry and a revocation cut
 * a live agent off; signing keys rotate and agents renew their tokens by
 * reload without a dropped request; a reload with a broken file keeps the
 * running config; readiness means connected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cli/demo/free-port.js';
import { signAgentToken } from '../../src/token.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { statusOf } from '../helpers/http.js';
import { failures, load } from '../helpers/load.js';
import { stopAll, writeYaml, type CtbridgeProcess } from '../helpers/processes.js';
import { TEST_SECRET, startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

let backend: Backend;
beforeAll(async () => {
  backend = await startBackend();
});
afterAll(async () => {
  await stopAll();
  await backend.close();
});

const SECRET_1 = 'rotation-secret-one-0123456789abcdef-0123';
const SECRET_2 = 'rotation-secret-two-0123456789abcdef-0123';

/** The relay's config file rewritten, and a reload asked for with SIGHUP; resolves on its log line. */
async function reloadRelay(relay: RelayInfo, config: Record<string, unknown>, expect: 'config reloaded' | 'reload refused: the config is invalid; the running config stays' = 'config reloaded') {
  const before = relay.proc.countLogs(expect);
  writeYaml(relay.dir, 'relay.yaml', { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, log: { level: 'info' }, ...config });
  relay.proc.child.kill('SIGHUP');
  return relay.proc.waitForLog((l) => l.msg === expect && relay.proc.countLogs(expect) > before);
}

/** The agent's config file rewritten with `token`, and a reload asked for with SIGHUP. */
async function reloadAgent(agent: CtbridgeProcess, relayUrl: string, token: string, tunnels: Record<string, unknown>) {
  const before = agent.countLogs('config reloaded');
  const file = agent.configFile!;
  writeYaml(file.slice(0, file.lastIndexOf('/')), 'agent.yaml', {
    relay: relayUrl.replace(/^http/, 'ws'), token, reconnect: { initialDelay: '100ms', maxDelay: '1s' },
    admin: { listen: '127.0.0.1:0' }, log: { level: 'info' }, tunnels,
  });
  agent.child.kill('SIGHUP');
  await agent.waitForLog((l) => l.msg === 'config reloaded' && agent.countLogs('config reloaded') > before);
}

describe('token expiry and revocation on live connections', () => {
  it('regression: an agent whose token expires is cut off within seconds of exp, and told what to do', async () => {
    const relay = await startRelayProcess({ tunnels: { t: {} } });
    // Long enough for the agent to start and connect on a loaded machine (a 3 s token expired before it
    // connected there); the cut is awaited as a log line, whenever it comes.
    const token = await signAgentToken({ agentId: 'short-lived', tunnels: ['t'], ttlMs: 10_000, key: { secret: TEST_SECRET } });
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;
    const agent = await startAgentProcess({ relayUrl: relay.url, token, tunnels: { t: { target: backend.url } } });
    expect(await statusOf(`${relay.url}/t/t/before`)).toBe(200);
    const cut = await relay.proc.waitForLog((l) => l.msg === 'agent cut off: its token no longer holds' && l.agentId === 'short-lived', 45_000);
    expect(cut.reason).toBe('expired');
    // The relay allows 5 s of clock skew past exp; the cut follows within seconds of that.
    expect(Date.parse(String(cut.time)) - exp).toBeGreaterThanOrEqual(0);
    expect(Date.parse(String(cut.time)) - exp).toBeLessThan(15_000);
    const told = await agent.waitForLog('relay refused the agent token');
    expect(String(told.hint)).toMatch(/ctbridge token/);
    expect(await statusOf(`${relay.url}/t/t/after`)).toBe(502);
  }, 90_000);

  // Regression: a token valid for more than ~24.8 days armed a timer past what Node takes; Node
  // fired it after 1 ms (TimeoutOverflowWarning) and the relay re-checked the token in a tight loop.
  it('regression: a 90-day token does not overflow the expiry timer', async () => {
    const relay = await startRelayProcess({ tunnels: { t: {} } });
    const token = await signAgentToken({ agentId: 'long-lived', tunnels: ['t'], ttlMs: 90 * 86_400_000, key: { secret: TEST_SECRET } });
    await startAgentProcess({ relayUrl: relay.url, token, tunnels: { t: { target: backend.url } } });
    for (let i = 0; i < 20; i++) expect(await statusOf(`${relay.url}/t/t/long-lived-${i}`)).toBe(200);
    expect(relay.proc.stderr).not.toMatch(/TimeoutOverflowWarning/);
  });

  it('revoking an agent id or a token id on reload cuts those connections and refuses them again; others serve on', async () => {
    const relay = await startRelayProcess({ tunnels: { t: {} } });
    const tunnels = { t: { target: backend.url } };
    await startAgentProcess({ relayUrl: relay.url, token: await tokenFor(['t'], 'alpha'), tunnels });
    const betaToken = await tokenFor(['t'], 'beta');
    const betaId = JSON.parse(Buffer.from(betaToken.split('.')[1], 'base64url').toString()).jti as string;
    await startAgentProcess({ relayUrl: relay.url, token: betaToken, tunnels });
    await startAgentProcess({ relayUrl: relay.url, token: await tokenFor(['t'], 'gamma'), tunnels });

    const reloaded = await reloadRelay(relay, { auth: { secret: TEST_SECRET, revoked: { agents: ['alpha'], tokens: [betaId] } }, tunnels: { t: {} } });
    expect(reloaded.agentsCutOff).toBe(2);
    const cut = relay.proc.lines.filter((l) => l.msg === 'agent cut off: its token no longer holds').map((l) => [l.agentId, l.reason]);
    expect(cut).toEqual(expect.arrayContaining([['alpha', 'revoked'], ['beta', 'revoked']]));
    // Their reconnects are refused; gamma serves every request.
    await relay.proc.waitForLog((l) => l.msg === 'agent refused: bad token' && l.reason === 'revoked');
    for (let i = 0; i < 6; i++) expect(await statusOf(`${relay.url}/t/t/after-revoke-${i}`)).toBe(200);
    const status = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { agents: { agentId: string }[] };
    expect(status.agents.map((a) => a.agentId)).toEqual(['gamma']);
  });
});

describe('key rotation and reload', () => {
  it('rotates the signing key with two agents under load and drops no request', async () => {
    const port = await freePort();
    const relay = await startRelayProcess({ auth: { keys: [{ id: 'k1', secret: SECRET_1 }] }, tunnels: { t: {} } }, port);
    const relayConf = (keys: { id: string; secret: string }[]) => ({ listen: `127.0.0.1:${port}`, auth: { keys }, tunnels: { t: {} } });
    const tunnels = { t: { target: backend.url } };
    const sign = (agentId: string, id: string, secret: string) => signAgentToken({ agentId, tunnels: ['t'], ttlMs: 3600_000, key: { id, secret } });
    const a = await startAgentProcess({ relayUrl: relay.url, token: await sign('a', 'k1', SECRET_1), tunnels });
    const b = await startAgentProcess({ relayUrl: relay.url, token: await sign('b', 'k1', SECRET_1), tunnels });
    const traffic = load((_, i) => `${relay.url}/t/t/rotation?i=${i}`, 10);
    await traffic.more(50);

    // 1. The new key goes first; the old one still verifies.
    expect((await reloadRelay(relay, relayConf([{ id: 'k2', secret: SECRET_2 }, { id: 'k1', secret: SECRET_1 }]))).agentsCutOff).toBe(0);
    await traffic.more(50);
    // 2. Each agent gets a token signed with the new key, by reload: make-before-break.
    await reloadAgent(a, relay.url, await sign('a', 'k2', SECRET_2), tunnels);
    await a.waitForLog((l) => l.msg === 'tunnel ready' && a.countLogs('tunnel ready') >= 2);
    await reloadAgent(b, relay.url, await sign('b', 'k2', SECRET_2), tunnels);
    await b.waitForLog((l) => l.msg === 'tunnel ready' && b.countLogs('tunnel ready') >= 2);
    // The old connections finish what they carry and leave (the status page's key column shows it).
    await relay.proc.waitForLog((l) => l.msg === 'agent disconnected' && l.agentId === 'a');
    await relay.proc.waitForLog((l) => l.msg === 'agent disconnected' && l.agentId === 'b');
    await traffic.more(50);
    // 3. The old key goes; nobody uses it any more.
    expect((await reloadRelay(relay, relayConf([{ id: 'k2', secret: SECRET_2 }]))).agentsCutOff).toBe(0);
    await traffic.more(50);
    await traffic.stop();

    expect(failures(traffic.results)).toEqual([]);
    const status = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { agents: { agentId: string; keyId: string }[] };
    expect(status.agents.map((x) => [x.agentId, x.keyId]).sort()).toEqual([['a', 'k2'], ['b', 'k2']]);
  });

  it('a relay reload with a broken file is refused with a log line, and the relay keeps serving', async () => {
    const relay = await startRelayProcess({ tunnels: { t: {} } });
    await startAgentProcess({ relayUrl: relay.url, tunnels: { t: { target: backend.url } } });
    const refused = await reloadRelay(relay, { auth: { secret: 'too-short' }, tunnels: { t: {} } }, 'reload refused: the config is invalid; the running config stays');
    expect(String(refused.err)).toMatch(/auth\.secret/);
    expect(await statusOf(`${relay.url}/t/t/still`)).toBe(200);
  });

  it('POST /reload with X-Ctbridge-Admin: 1 on the admin listener does what SIGHUP does (Windows has no SIGHUP)', async () => {
    const relay = await startRelayProcess({ tunnels: { t: {} } });
    writeYaml(relay.dir, 'relay.yaml', { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, auth: { secret: TEST_SECRET }, tunnels: { t: {}, added: {} } });
    // Without the header a browser form cannot send, nothing is reloaded (issue 12).
    expect((await fetch(`${relay.adminUrl}/reload`, { method: 'POST' })).status).toBe(403);
    const r = await fetch(`${relay.adminUrl}/reload`, { method: 'POST', headers: { 'X-Ctbridge-Admin': '1' } });
    expect(r.status).toBe(200);
    expect((await r.json() as { ok: boolean }).ok).toBe(true);
    const status = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { tunnels: { name: string }[] };
    expect(status.tunnels.map((t) => t.name)).toContain('added');
  });
});

describe('readiness', () => {
  it('an agent is ready only while connected with its tunnels accepted', async () => {
    const port = await freePort();
    const agent = await startAgentProcess({ relayUrl: `http://127.0.0.1:${port}`, tunnels: { t: { target: backend.url } }, waitReady: false });
    const admin = await agent.adminUrl();
    const notYet = await fetch(`${admin}/readyz`);
    expect(notYet.status).toBe(503);
    expect((await notYet.json() as { reason: string }).reason).toMatch(/relay|connect/);

    const relay = await startRelayProcess({ tunnels: { t: {} } }, port);
    await agent.waitForLog('tunnel ready');
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    expect((await fetch(`${relay.adminUrl}/readyz`)).status).toBe(200);

    await relay.proc.stop('SIGKILL');
    await agent.waitForLog('disconnected from relay');
    expect((await fetch(`${admin}/readyz`)).status).toBe(503);
  });
});
