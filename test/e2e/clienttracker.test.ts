/**
 * A Client Tracker provider behind a real relay and agent (bin/ctbridge.js):
 * Client Tracker's GETs come in through a `clienttracker` tunnel, the
 * provider's POSTs go out through the agent's egress listener, and a small
 * Client Tracker (cli/demo/ct-simulator.ts) plays the SaaS on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCtSimulator, type CtSimulator } from '../../cli/demo/ct-simulator.js';
import { startSampleProvider, type SampleProvider } from '../../cli/demo/sample-provider.js';
import { parseResourceInfo } from '../../src/xml/messages.js';
import { validateXml } from '../../src/xml/validate.js';
import { request } from '../helpers/http.js';
import { stopAll, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, type RelayInfo } from '../helpers/tunnel.js';
import { freePort } from '../../cli/demo/free-port.js';

/** The CT `key` the provider sends with every message: must never appear in a log. */
const KEY = 'ctkey-Q7vN2pX9sLw4RtY8';
const CREDENTIALS = { login: 'jsmith', key: KEY, ctid: '42' };
const ALLOW_PATHS = ['/ct/ctregister.asp', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp'];
/** Addresses of "Client Tracker's servers" for the strict provider. */
const CT_NETWORK = '198.51.100.0/24';
const CT_SERVER = '198.51.100.7';
/** The cioc tunnel's idle timeout on the relay, kept short for the timeout test. */
const IDLE_MS = 1000;

let ct: CtSimulator;
let provider: SampleProvider;
let strict: SampleProvider;
let relay: RelayInfo;
let agent: CtbridgeProcess;
let egressPort: number;
let base: string;


/** The text of a `<response><error>` document (either namespace), or undefined. */
function errorTextOf(xml: string): string | undefined {
  return /<error>([\s\S]*?)<\/error>/.exec(xml)?.[1];
}

beforeAll(async () => {
  ct = await startCtSimulator();
  egressPort = await freePort();
  provider = await startSampleProvider({ rpcBase: `http://127.0.0.1:${egressPort}/t/cioc/`, credentials: CREDENTIALS, bom: true });
  strict = await startSampleProvider({ ctNetworks: [CT_NETWORK] });
  const ctTunnel = { kind: 'clienttracker', clientTracker: { rpcUrl: ct.url } };
  relay = await startRelayProcess({
    tunnels: {
      cioc: { ...ctTunnel, timeouts: { idle: `${IDLE_MS}ms`, request: '10s' } },
      'cioc-strict': ctTunnel,
      'cioc-plain': {},
    },
  });
  agent = await startAgentProcess({
    relayUrl: relay.url,
    tunnels: {
      cioc: { target: provider.url, allowPaths: ALLOW_PATHS },
      'cioc-strict': { target: strict.url, allowPaths: ALLOW_PATHS },
      'cioc-plain': { target: provider.url, allowPaths: ALLOW_PATHS },
    },
    extra: { egress: { listen: `127.0.0.1:${egressPort}` } },
  });
  base = `${relay.url}/t/cioc`;
});

afterAll(async () => {
  await stopAll();
  await provider?.close();
  await strict?.close();
  await ct?.close();
});

describe('Client Tracker → provider through the relay', () => {
  it('registration: server-called URLs point at the relay with placeholders intact, browser URLs untouched, schema-valid', async () => {
    const reg = await ct.register(`${base}/ct/ctregister.asp`);
    expect(reg.status).toBe(200);
    expect(reg.validation).toEqual({ ok: true });
    expect(reg.parsed?.kind).toBe('registration');
    const rt = ct.registration!;
    expect(rt.resourceInfoURL).toBe(`${relay.url}/t/cioc/ct/ctfetch.asp?num=[ID]`);
    expect(rt.resourceTaxonomyInfoURL).toBe(`${relay.url}/t/cioc/ct/ctfetchtax.asp?IDList=[IDS]`);
    expect(rt.launchURL).toBe(`${provider.url}/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[KEY]`);
    expect(rt.resourceSummaryURL).toBe(provider.resourceType.resourceSummaryURL);
    expect(rt.resourceEmailURL).toBe(provider.resourceType.resourceEmailURL);
    // Byte for byte: the BOM and the declaration survive, `[ID]` is not %5BID%5D, `&amp;` stays escaped.
    expect([...reg.raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(reg.text).toContain(`<resourceInfoURL>${relay.url}/t/cioc/ct/ctfetch.asp?num=[ID]</resourceInfoURL>`);
    expect(reg.text).toContain('ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]');
    expect(reg.text).not.toMatch(/%5B/i);
    // Apart from the two URLs, the provider's bytes.
    const sent = provider.received.at(-1)!.answer!.toString('utf8');
    const origin = provider.url;
    expect(reg.text).toBe(
      sent
        .replace(`${origin}/ct/ctfetch.asp`, `${relay.url}/t/cioc/ct/ctfetch.asp`)
        .replace(`${origin}/ct/ctfetchtax.asp`, `${relay.url}/t/cioc/ct/ctfetchtax.asp`),
    );
    expect(validateXml('registration', reg.raw)).toEqual({ ok: true });
  });

  const fifty = 'Ж&/?#% +'.repeat(7).slice(0, 50);
  it.each([
    ['ampersand', 'a&b=c'],
    ['slash', 'x/y/z'],
    ['question mark', 'what?now'],
    ['hash', 'frag#ment'],
    ['percent', '100%'],
    ['encoded-looking percent', '50%25'],
    ['plus', 'a+b'],
    ['space', 'two words'],
    ['Cyrillic and №', 'Банк №5'],
    ['leading zero', '0123'],
    ['50 characters', fifty],
  ])('fetch with an awkward id (%s) reaches the provider exactly, and the answer comes back unchanged', async (_label, id) => {
    expect([...fifty].length).toBe(50);
    if (!ct.registration) await ct.register(`${base}/ct/ctregister.asp`);
    const before = provider.received.length;
    const r = await ct.fetch(undefined, id);
    expect(r.url.startsWith(`${base}/ct/ctfetch.asp?num=`)).toBe(true);
    expect(r.status).toBe(200);
    const seen = provider.received.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.path).toBe('/ct/ctfetch.asp');
    expect(seen[0]!.id).toBe(id);
    expect(seen[0]!.url).toBe(`/ct/ctfetch.asp?num=${encodeURIComponent(id)}`);
    expect(r.raw.equals(seen[0]!.answer!)).toBe(true);
    expect(r.validation).toEqual({ ok: true });
    expect(r.parsed).toEqual({ kind: 'resourceInfo', resourceInfo: { id, name: `Record ${id}`, url: `${provider.url}/record/${encodeURIComponent(id)}` } });
  });

  it('an unknown id gets the provider\'s own error, unchanged', async () => {
    const r = await ct.fetch(`${base}/ct/ctfetch.asp?num=[ID]`, 'missing');
    expect(r.status).toBe(200);
    expect(r.raw.equals(provider.received.at(-1)!.answer!)).toBe(true);
    expect(r.parsed).toEqual({ kind: 'error', error: 'No record with ID missing' });
  });

  it('taxonomy fetch through the rewritten URL', async () => {
    if (!ct.registration) await ct.register(`${base}/ct/ctregister.asp`);
    const r = await ct.fetchTaxonomy(undefined, ['ZZZ00123', 'a,b?']);
    expect(r.url).toBe(`${base}/ct/ctfetchtax.asp?IDList=ZZZ00123,a%2Cb%3F`);
    expect(r.validation).toEqual({ ok: true });
    expect(r.parsed?.kind).toBe('taxonomy');
    expect(provider.received.at(-1)!.ids).toEqual(['ZZZ00123', 'a', 'b?']);
  });

  it('the https-namespace quirk in an error answer passes through, and is reported', async () => {
    provider.setNamespaceQuirk(true);
    try {
      const r = await ct.fetch(`${base}/ct/ctfetch.asp?num=[ID]`, 'missing');
      expect(r.status).toBe(200);
      expect(r.raw.equals(provider.received.at(-1)!.answer!)).toBe(true);
      expect(r.text).toContain('xmlns="https://clienttracker.cioc.ca/schema/"');
      expect(errorTextOf(r.text)).toBe('No record with ID missing');
      const id = r.headers['x-ctbridge-request-id'];
      const line = await relay.proc.waitForLog((l) => l.requestId === id && l.reason === 'namespace-quirk');
      expect(line.action).toBe('passed through');
      // …and counted, for monitoring.
      const metrics = (await request(`${relay.adminUrl}/metrics`)).text;
      expect(metrics).toMatch(/ctbridge_ct_answer_problems_total\{tunnel="cioc",reason="namespace-quirk",mode="report"\} [1-9]/);
    } finally {
      provider.setNamespaceQuirk(false);
    }
  });

  it('a path not in the agent\'s allowPaths never reaches the provider', async () => {
    const before = provider.received.length;
    // clienttracker tunnel: the agent's 404 becomes an XML error Client Tracker can show (HTTP = errorStatus, 200).
    const r = await request(`${base}/admin/users.asp?id=1`);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_PATH_NOT_ALLOWED');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/application\/xml/);
    expect(errorTextOf(r.text)).toMatch(/does not open this address of the provider behind 'cioc'/);
    expect(validateXml('resourceInfo', r.body)).toEqual({ ok: true });
    // Plain http tunnel to the same provider: the agent's 404 as it is.
    const plain = await request(`${relay.url}/t/cioc-plain/admin/users.asp?id=1`);
    expect(plain.status).toBe(404);
    expect(plain.headers['x-ctbridge-error']).toBe('CTB_PATH_NOT_ALLOWED');
    expect(provider.received.length).toBe(before);
  });

  it('a provider slower than the tunnel\'s idle timeout: Client Tracker gets an XML error', async () => {
    provider.setDelay(IDLE_MS * 3);
    try {
      const started = Date.now();
      const r = await ct.fetch(`${base}/ct/ctfetch.asp?num=[ID]`, 'slow-1');
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(IDLE_MS - 50);
      expect(took).toBeLessThan(IDLE_MS * 3);
      expect(r.status).toBe(200);
      expect(r.headers['x-ctbridge-error']).toBe('CTB_TARGET_TIMEOUT');
      expect(r.validation).toEqual({ ok: true });
      expect(r.parsed).toEqual({ kind: 'error', error: expect.stringMatching(/behind 'cioc' did not answer within 1 second/) });
    } finally {
      provider.setDelay(0);
    }
  });
});

describe('forwarded addresses and the provider\'s access check', () => {
  it('a forged X-Forwarded-For from an untrusted caller is replaced: the provider sees the real caller and denies it', async () => {
    const before = strict.received.length;
    const r = await request(`${relay.url}/t/cioc-strict/ct/ctfetch.asp?num=X1`, { headers: { 'X-Forwarded-For': CT_SERVER } });
    const seen = strict.received.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen[0]!.allowed).toBe(false);
    expect(r.status).toBe(403);
    expect(parseResourceInfo(r.body)).toEqual({ kind: 'error', error: 'Access denied for 127.0.0.1' });
  });

  it('a relay that trusts its load balancer passes the real client on, and the provider accepts it', async () => {
    const trusted = await startRelayProcess({
      trustedProxies: ['127.0.0.1/32'],
      tunnels: { 'cioc-strict': { kind: 'clienttracker', clientTracker: { rpcUrl: ct.url } } },
    });
    await startAgentProcess({ relayUrl: trusted.url, tunnels: { 'cioc-strict': { target: strict.url, allowPaths: ALLOW_PATHS } } });
    const before = strict.received.length;
    const r = await request(`${trusted.url}/t/cioc-strict/ct/ctfetch.asp?num=X1`, { headers: { 'X-Forwarded-For': CT_SERVER } });
    const seen = strict.received.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-forwarded-for']).toBe(CT_SERVER);
    expect(seen[0]!.caller).toBe(CT_SERVER);
    expect(r.status).toBe(200);
    expect(parseResourceInfo(r.body)).toEqual({ kind: 'resourceInfo', resourceInfo: { id: 'X1', name: 'Record X1', url: `${strict.url}/record/X1` } });
    // …while the untrusted relay still refuses the same header.
    const forged = await request(`${relay.url}/t/cioc-strict/ct/ctfetch.asp?num=X1`, { headers: { 'X-Forwarded-For': CT_SERVER } });
    expect(forged.status).toBe(403);
  });
});

describe('provider → Client Tracker through the agent egress', () => {
  it('push, isInRequest and remove: CT receives the exact bytes, and its exact answer comes back', async () => {
    const before = ct.received.length;
    const items = [
      { id: 'ZZZ00123', name: 'Food Bank, North York Branch' },
      { id: 'Банк №5 & <co>', name: 'Продовольственный банк' },
    ];
    const pushes = [];
    for (const item of items) pushes.push(await provider.pushResource(item));
    const isIn = await provider.isInRequest();
    const removed = await provider.removeResource('ZZZ00123');
    const results = [...pushes, isIn, removed];

    const got = ct.received.slice(before);
    expect(got.map((g) => g.path)).toEqual(['/rpc/add_resource', '/rpc/add_resource', '/rpc/is_in_request', '/rpc/remove_resource']);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(got[i]!.valid).toBe(true);
      expect(got[i]!.body.equals(r.sent)).toBe(true);
      expect(r.body.equals(got[i]!.answer)).toBe(true);
    });
    expect(pushes[1]!.answer).toEqual({ kind: 'success', ids: ['ZZZ00123', 'Банк №5 & <co>'] });
    expect(isIn.answer).toEqual({ kind: 'yes', ids: ['ZZZ00123', 'Банк №5 & <co>'] });
    expect(removed.answer).toEqual({ kind: 'success', ids: ['Банк №5 & <co>'] });
    expect(ct.idsFor('jsmith', '42')).toEqual(['Банк №5 & <co>']);
  });

  it('an invalid push is refused by the agent with an XML error and never forwarded', async () => {
    const before = ct.received.length;
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<pushResource xmlns="http://clienttracker.cioc.ca/schema/"><login>jsmith</login><key>${KEY}</key>` +
      '<resourceItem><id>ZZZ00123</id></resourceItem></pushResource>';
    const r = await provider.postRaw('add_resource', body);
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/xml/);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_XML_INVALID');
    const text = errorTextOf(r.body.toString('utf8'));
    expect(text).toBeTruthy();
    expect(text).not.toContain(KEY);
    expect(ct.received.length).toBe(before);
  });

  it('a DOCTYPE / entity-bomb body is refused quickly and never forwarded', async () => {
    const before = ct.received.length;
    const lol = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    const body =
      '<?xml version="1.0"?>\n' +
      `<!DOCTYPE pushResource [\n${lol.join('\n')}\n]>\n` +
      `<pushResource xmlns="http://clienttracker.cioc.ca/schema/"><login>&lol9;</login><key>${KEY}</key><ctid>42</ctid>` +
      '<resourceItem><id>1</id><name>x</name><url>http://x/</url></resourceItem></pushResource>';
    const started = performance.now();
    const r = await provider.postRaw('add_resource', body);
    const ms = performance.now() - started;
    expect(ms).toBeLessThan(1000);
    expect(r.status).toBe(400);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_XML_INVALID');
    expect(errorTextOf(r.body.toString('utf8'))).toMatch(/DOCTYPE|ENTITY/);
    expect(ct.received.length).toBe(before);
  });
});

describe('logs and an agent that is gone', () => {
  it('no log line of the relay or the agent holds the CT key', async () => {
    // Make sure every exchange above has been logged before looking.
    await relay.proc.waitForLog((l) => l.msg === 'client tracker message');
    const all = relay.proc.allOutput + agent.allOutput;
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(KEY);
  });

  it('with the agent stopped, Client Tracker gets an XML "not connected" error with HTTP 200', async () => {
    await agent.stop();
    await relay.proc.waitForLog((l) => l.msg === 'agent disconnected' && Array.isArray(l.tunnels) && (l.tunnels as string[]).includes('cioc'));
    const before = provider.received.length;
    const r = await ct.fetch(`${base}/ct/ctfetch.asp?num=[ID]`, 'ZZZ00123');
    expect(r.status).toBe(200);
    expect(r.headers['x-ctbridge-error']).toBe('CTB_AGENT_NOT_CONNECTED');
    expect(r.headers['content-type']).toMatch(/application\/xml/);
    expect(r.validation).toEqual({ ok: true });
    expect(r.parsed).toEqual({ kind: 'error', error: expect.stringMatching(/agent for 'cioc' is not connected/) });
    expect(provider.received.length).toBe(before);
    expect(relay.proc.allOutput + agent.allOutput).not.toContain(KEY);
  });
});
