import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { checkCommand, runCheck } from '../../../cli/check/index.js';
import { capture, fullUrls, registrationXml, requestedId, resourceInfoXml, sendXml, startProvider, type Provider } from './provider.js';

/** The intranet host in these registrations is never contacted: the check must go through the "relay" (a loopback server). */
const INTRANET = 'http://intranet.invalid';
let relay: Provider | undefined;

afterEach(async () => {
  await relay?.close();
  relay = undefined;
});

describe('ctbridge check through a relay tunnel URL', () => {
  it('fetches an intranet resourceInfoURL through the same tunnel, and says so', async () => {
    relay = await startProvider({
      // An `http` tunnel: the registration comes back with the provider's intranet URLs.
      '/t/cioc/ct/ctregister.asp': (_req, res) => sendXml(res, registrationXml(fullUrls(INTRANET))),
      '/t/cioc/ct/ctfetch.asp': (req, res) => sendXml(res, resourceInfoXml(requestedId(req))),
    });
    const out = capture();
    const code = await checkCommand({ registrationUrl: `${relay.origin}/t/cioc/ct/ctregister.asp`, id: 'A 1' }, out.io);
    expect(code).toBe(0);
    expect(relay.requests).toEqual(['/t/cioc/ct/ctregister.asp', '/t/cioc/ct/ctfetch.asp?num=A%201']);
    expect(out.stdout).toContain(`through the relay tunnel "cioc" at ${relay.origin}`);
    expect(out.stdout).toContain(
      `• resourceInfoURL points at the intranet, so the check fetched it through the relay tunnel "cioc" instead: ${relay.origin}/t/cioc/ct/ctfetch.asp?num=A%201`,
    );
    expect(out.stdout).toContain('⚠ called by Client Tracker\'s servers, but as served through the relay it still points at the intranet');
    expect(out.stdout).toContain('`kind: clienttracker`');

    const { report } = await runCheck({ registrationUrl: `${relay.origin}/t/cioc/ct/ctregister.asp`, id: 'A 1' });
    expect(report.relay).toEqual({ origin: relay.origin, tunnel: 'cioc', publicBase: `${relay.origin}/t/cioc` });
    expect(report.fetch).toMatchObject({ throughRelay: true, template: `${INTRANET}/ct/ctfetch.asp?num=[ID]` });
    expect(parse(report.suggestion?.agentYaml ?? '')).toEqual({
      tunnels: { cioc: { target: INTRANET, allowPaths: ['/ct/ctregister.asp', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp'] } },
    });
    expect(report.suggestion?.registerUrl).toBe(`${relay.origin}/t/cioc/ct/ctregister.asp`);
  });

  it('uses URLs a clienttracker tunnel already rewrote as they are, and takes the target from launchURL', async () => {
    relay = await startProvider({
      '/t/cioc/reg': (_req, res, origin) =>
        sendXml(
          res,
          registrationXml({
            ...fullUrls(INTRANET),
            resourceInfoURL: `${origin}/t/cioc/ct/ctfetch.asp?num=[ID]`,
            resourceTaxonomyInfoURL: `${origin}/t/cioc/ct/ctfetchtax.asp?IDList=[IDS]`,
          }),
        ),
      '/t/cioc/ct/ctfetch.asp': (req, res) => sendXml(res, resourceInfoXml(requestedId(req))),
    });
    const { ok, report } = await runCheck({ registrationUrl: `${relay.origin}/t/cioc/reg`, id: '5', tunnel: 'toronto' });
    expect(ok).toBe(true);
    expect(report.warnings).toBe(0);
    expect(report.fetch?.throughRelay).toBe(false);
    expect(relay.requests).toEqual(['/t/cioc/reg', '/t/cioc/ct/ctfetch.asp?num=5']);
    const info = report.urls.find((u) => u.element === 'resourceInfoURL');
    expect(info?.items[0]).toMatchObject({ level: 'ok', text: expect.stringContaining('points at the relay tunnel') });
    expect(report.suggestion).toMatchObject({ tunnel: 'toronto', target: INTRANET, allowPaths: ['/reg', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp'] });
  });

  it("reports the bridge's own error answer as a failure", async () => {
    relay = await startProvider({
      '/t/cioc/reg': (_req, res) => {
        const body = JSON.stringify({
          error: { details: 'x', _type: 'CtbridgeError', code: 'CTB_AGENT_NOT_CONNECTED', message: 'No agent serving tunnel "cioc" is connected' },
        });
        res.writeHead(502, { 'content-type': 'application/json', 'x-ctbridge-error': 'CTB_AGENT_NOT_CONNECTED' });
        res.end(body);
      },
    });
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${relay.origin}/t/cioc/reg` }, out.io)).toBe(1);
    expect(out.stdout).toContain(
      '✗ the bridge answered instead of the provider (HTTP 502, CTB_AGENT_NOT_CONNECTED): "No agent serving tunnel "cioc" is connected"',
    );
  });
});
