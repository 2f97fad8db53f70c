import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { checkCommand, runCheck } from '../../../cli/check/index.js';
import {
  NS,
  capture,
  closedPort,
  fullUrls,
  registrationXml,
  requestedId,
  resourceInfoXml,
  sendXml,
  startProvider,
  type Provider,
} from './provider.js';

const QUIRK_NS = 'https://clienttracker.cioc.ca/schema/';
let provider: Provider | undefined;

afterEach(async () => {
  await provider?.close();
  provider = undefined;
});

/** A provider that serves the full example registration and answers every fetch with the id it was asked for. */
async function goodProvider(): Promise<Provider> {
  return startProvider({
    '/ct/ctregister.asp': (_req, res, origin) => sendXml(res, registrationXml(fullUrls(origin))),
    '/ct/ctfetch.asp': (req, res) => sendXml(res, resourceInfoXml(requestedId(req))),
    '/ct/ctfetchtax.asp': (_req, res) =>
      sendXml(res, `<response xmlns="${NS}"><taxonomy><entry code="BD-1800" term="Food Banks"/></taxonomy></response>`),
  });
}

describe('ctbridge check against a loopback provider', () => {
  it('passes a valid registration and fetch, and suggests the tunnel config', async () => {
    provider = await goodProvider();
    const out = capture();
    const code = await checkCommand({ registrationUrl: `${provider.origin}/ct/ctregister.asp`, id: 'ZZZ00123' }, out.io);
    expect(out.stderr).toBe('');
    expect(code).toBe(0);
    expect(out.stdout).toContain('✓ the registration conforms to registration.xsd');
    expect(out.stdout).toContain('✓ the answer conforms to resourceinfo.xsd');
    expect(out.stdout).toContain('returned id "ZZZ00123", name "Food Bank"');
    expect(out.stdout).toContain("would be rewritten to the tunnel's public URL by a relay `clienttracker` tunnel");
    expect(out.stdout).toContain('left pointing at the intranet');
    expect(out.stdout).toContain('✓ has [ID]');
    expect(out.stdout).toContain('✓ has [CTID], [LOGIN], [KEY]');
    expect(out.stdout).toMatch(/→ HTTP 200 · application\/xml; charset=utf-8 · \d+ bytes · \d+ ms/);
    expect(out.stdout).not.toContain('✗');
    expect(out.stdout).toContain('Result: ✓ everything checked conforms');
    expect(out.stdout).toContain('        allowPaths:\n          - /ct/ctregister.asp\n          - /ct/ctfetch.asp\n          - /ct/ctfetchtax.asp');
    expect(out.stdout).toContain('kind: clienttracker');
    expect(out.stdout).toContain('rpcUrl: https://ct.example/rpc/');
    expect(provider.requests).toEqual(['/ct/ctregister.asp', '/ct/ctfetch.asp?num=ZZZ00123']);

    const { ok, report } = await runCheck({ registrationUrl: `${provider.origin}/ct/ctregister.asp`, id: 'ZZZ00123' });
    expect(ok).toBe(true);
    expect(parse(report.suggestion?.agentYaml ?? '')).toEqual({
      tunnels: {
        provider: { target: provider.origin, allowPaths: ['/ct/ctregister.asp', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp'] },
      },
    });
    expect(parse(report.suggestion?.relayYaml ?? '')).toEqual({
      tunnels: { provider: { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc/' } } },
    });
    expect(report.suggestion?.registerUrl).toBe('https://relay.example/t/provider/ct/ctregister.asp');
    expect(report.urls.map((u) => [u.element, u.calledBy])).toEqual([
      ['launchURL', 'browser'],
      ['resourceInfoURL', 'server'],
      ['resourceSummaryURL', 'browser'],
      ['resourceEmailURL', 'browser'],
      ['resourceTaxonomyInfoURL', 'server'],
    ]);
  });

  it('prints a machine-readable report with --json', async () => {
    provider = await goodProvider();
    const out = capture();
    const url = `${provider.origin}/ct/ctregister.asp`;
    const code = await checkCommand({ registrationUrl: url, id: 'A1', taxonomyIds: 'A1, B2', tunnel: 'cioc', json: true }, out.io);
    expect(code).toBe(0);
    const report = JSON.parse(out.stdout);
    expect(report).toMatchObject({
      ok: true,
      errors: 0,
      registrationUrl: url,
      relay: null,
      registration: { name: 'Toronto Community Services', request: { status: 200, url } },
      fetch: { id: 'A1', resourceInfo: { id: 'A1', name: 'Food Bank' }, throughRelay: false },
      taxonomy: { ids: ['A1', 'B2'], entries: [{ code: 'BD-1800', term: 'Food Banks' }] },
      suggestion: { tunnel: 'cioc', target: provider.origin },
    });
    expect(provider.requests).toContain('/ct/ctfetchtax.asp?IDList=A1,B2');
  });

  it('hints at --id when none is given', async () => {
    provider = await goodProvider();
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${provider.origin}/ct/ctregister.asp` }, out.io)).toBe(0);
    expect(out.stdout).toContain('pass --id <an existing item id>');
    expect(provider.requests).toEqual(['/ct/ctregister.asp']);
  });

  it('fails a registration without launchURL, with the schema line and element', async () => {
    provider = await startProvider({
      '/reg': (_req, res, origin) => {
        const { launchURL: _omit, ...urls } = fullUrls(origin);
        sendXml(res, registrationXml(urls));
      },
    });
    const out = capture();
    const code = await checkCommand({ registrationUrl: `${provider.origin}/reg` }, out.io);
    expect(code).toBe(1);
    expect(out.stdout).toContain('✗ the registration does not conform to registration.xsd');
    expect(out.stdout).toContain('line 5, element <resourceInfoURL>: This element is not expected. Expected is ( launchURL ).');
    expect(out.stdout).toMatch(/Result: ✗ 1 error/);
    // What could be read is still shown.
    expect(out.stdout).toContain('resourceInfoURL: ');
  });

  it('warns about the https-namespace quirk and still passes', async () => {
    provider = await startProvider({
      '/reg': (_req, res, origin) => sendXml(res, registrationXml(fullUrls(origin), { ns: QUIRK_NS })),
      '/ct/ctfetch.asp': (req, res) => sendXml(res, resourceInfoXml(requestedId(req), 'N', 'http://i/1', QUIRK_NS)),
    });
    const out = capture();
    const code = await checkCommand({ registrationUrl: `${provider.origin}/reg`, id: '7' }, out.io);
    expect(code).toBe(0);
    expect(out.stdout).toContain(`⚠ the root element uses the https namespace ${QUIRK_NS}`);
    expect(out.stdout).toContain('Client Tracker in strict mode would reject this answer');
    expect(out.stdout).toContain('`report` mode');
    expect(out.stdout).toContain('✓ apart from the namespace, the registration conforms to registration.xsd');
    expect(out.stdout).toContain('✓ apart from the namespace, the answer conforms to resourceinfo.xsd');
    expect(out.stdout).toContain('Result: ✓ everything checked conforms (2 warnings)');
  });

  it('still reports schema errors behind the https-namespace quirk', async () => {
    provider = await startProvider({
      '/reg': (_req, res) =>
        sendXml(res, registrationXml({ resourceInfoURL: 'http://i/f?id=[ID]' }, { ns: QUIRK_NS })),
    });
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${provider.origin}/reg` }, out.io)).toBe(1);
    expect(out.stdout).toContain('⚠ the root element uses the https namespace');
    expect(out.stdout).toContain('line 5, element <resourceInfoURL>');
  });

  it('sends an awkward id percent-encoded exactly as encodeURIComponent does', async () => {
    const id = 'Банк & Co/№5?#%';
    provider = await goodProvider();
    const out = capture();
    const code = await checkCommand({ registrationUrl: `${provider.origin}/ct/ctregister.asp`, id }, out.io);
    expect(provider.requests[1]).toBe(`/ct/ctfetch.asp?num=${encodeURIComponent(id)}`);
    expect(provider.requests[1]).toBe('/ct/ctfetch.asp?num=%D0%91%D0%B0%D0%BD%D0%BA%20%26%20Co%2F%E2%84%965%3F%23%25');
    expect(out.stdout).toContain(`returned id "${id}"`);
    expect(code).toBe(0);
  });

  it('says so when the answer is an HTML error page', async () => {
    provider = await startProvider({
      '/reg': (_req, res) =>
        sendXml(res, '<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head><body>boom</body></html>', 500, 'text/html; charset=utf-8'),
    });
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${provider.origin}/reg` }, out.io)).toBe(1);
    expect(out.stdout).toContain('✗ HTTP 500: Client Tracker expects HTTP 200');
    expect(out.stdout).toContain('✗ the answer is not XML (HTTP 500, Content-Type text/html; charset=utf-8): it starts with "<!DOCTYPE html> <html><head><title>500 Internal Server Error');
    expect(out.stdout).not.toContain('DOCTYPE declarations are refused');
  });

  it('names the URL and "connection refused" when the provider is down', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/ct/ctregister.asp`;
    const out = capture();
    expect(await checkCommand({ registrationUrl: url, id: '1' }, out.io)).toBe(1);
    expect(out.stdout).toContain(`✗ GET ${url} failed: connection refused by 127.0.0.1:${port}`);
    expect(out.stdout).not.toContain('Suggested tunnel');
  });

  it('redacts key-like query values everywhere, but keeps placeholders', async () => {
    provider = await startProvider({
      '/reg': (_req, res, origin) =>
        sendXml(
          res,
          registrationXml({
            ...fullUrls(origin),
            resourceSummaryURL: `${origin}/printlist.asp?IDList=[IDS]&key=summary-secret`,
            resourceInfoURL: `${origin}/ct/ctfetch.asp?num=[ID]&Token=fetch-secret`,
          }),
        ),
      '/ct/ctfetch.asp': (req, res) => sendXml(res, resourceInfoXml(requestedId(req), 'N', 'http://i/r?id=1&password=item-secret')),
    });
    for (const json of [false, true]) {
      const out = capture();
      const registrationUrl = `${provider.origin}/reg?site=1&key=cli-secret`;
      expect(await checkCommand({ registrationUrl, id: 'X', json }, out.io)).toBe(0);
      for (const secret of ['cli-secret', 'summary-secret', 'fetch-secret', 'item-secret']) expect(out.stdout).not.toContain(secret);
      expect(out.stdout).toContain('key=[KEY]');
      expect(out.stdout).toContain('/reg?site=1&key=[REDACTED]');
      expect(out.stdout).toContain('Token=[REDACTED]');
    }
    // The provider itself got the real values.
    expect(provider.requests).toContain('/reg?site=1&key=cli-secret');
    expect(provider.requests).toContain('/ct/ctfetch.asp?num=X&Token=fetch-secret');
  });

  it('reports a redirect without following it', async () => {
    provider = await startProvider({
      '/reg': (_req, res) => {
        res.writeHead(302, { location: 'http://intranet.invalid/ct/ctregister.asp?key=loc-secret' });
        res.end();
      },
    });
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${provider.origin}/reg` }, out.io)).toBe(1);
    expect(out.stdout).toContain('✗ HTTP 302: a redirect to http://intranet.invalid/ct/ctregister.asp?key=[REDACTED], not followed');
    expect(provider.requests).toEqual(['/reg']);
  });

  it('fails when the provider answers the fetch with <error>', async () => {
    provider = await startProvider({
      '/reg': (_req, res, origin) => sendXml(res, registrationXml(fullUrls(origin))),
      '/ct/ctfetch.asp': (_req, res) => sendXml(res, `<response xmlns="${NS}"><error>Record not found</error></response>`),
    });
    const out = capture();
    expect(await checkCommand({ registrationUrl: `${provider.origin}/reg`, id: 'nope' }, out.io)).toBe(1);
    expect(out.stdout).toContain('✗ the provider answered with an error for id "nope": "Record not found"');
  });

  it('exits 2 for bad usage', async () => {
    for (const argv of [
      { registrationUrl: 'not a url' },
      { registrationUrl: 'ftp://intranet.example/reg' },
      { registrationUrl: 'http://127.0.0.1:1/reg', tunnel: 'Bad_Name' },
      { registrationUrl: 'http://127.0.0.1:1/reg', id: '' },
    ]) {
      const out = capture();
      expect(await checkCommand(argv, out.io)).toBe(2);
      expect(out.stdout).toBe('');
      expect(out.stderr).toMatch(/^ctbridge check: /);
    }
  });
});
