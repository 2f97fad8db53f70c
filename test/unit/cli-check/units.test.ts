import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { displayUrl, redactText, relayOf, splitHttpUrl, throughTunnel } from '../../../cli/check/display.js';
import { createFetchText, runCheck, type FetchText, type FetchedText } from '../../../cli/check/index.js';
import { checkUrlElement } from '../../../cli/check/urls.js';
import { NS, fullUrls, registrationXml } from './provider.js';

function answer(body: string, status = 200, headers: FetchedText['headers'] = { 'content-type': 'application/xml' }): FetchedText {
  return { status, headers, body: Buffer.from(body), ms: 1 };
}

/** A stub fetchText serving fixed answers by exact URL; records the URLs asked for. */
function stub(answers: Record<string, FetchedText>): FetchText & { asked: string[] } {
  const asked: string[] = [];
  const f = async (url: string): Promise<FetchedText> => {
    asked.push(url);
    const a = answers[url];
    if (!a) throw new Error(`no stub for ${url}`);
    return a;
  };
  return Object.assign(f, { asked });
}

describe('display helpers', () => {
  it('redacts secret query values but keeps placeholder values', () => {
    expect(displayUrl('http://h/l?ctid=[CTID]&key=[KEY]&token=abc')).toBe('http://h/l?ctid=[CTID]&key=[KEY]&token=[REDACTED]');
    expect(displayUrl('http://u:pw@h/x?key=s')).toBe('http://u:[REDACTED]@h/x?key=[REDACTED]');
    expect(redactText('see http://h/?key=abc, then /x?password=p.')).toBe('see http://h/?key=[REDACTED], then /x?password=[REDACTED].');
  });

  it('splits and swaps URLs without re-encoding them', () => {
    expect(splitHttpUrl('HTTP://Intranet.Example:80/ct/f.asp?id=[ID]#x')).toEqual({
      origin: 'http://intranet.example',
      path: '/ct/f.asp',
      query: '?id=[ID]',
      rest: '/ct/f.asp?id=[ID]',
    });
    expect(splitHttpUrl('ftp://h/x')).toBeNull();
    expect(splitHttpUrl('/relative')).toBeNull();
    expect(throughTunnel('http://intranet/ct/f.asp?id=[ID]', 'https://relay.example/t/cioc')).toBe(
      'https://relay.example/t/cioc/ct/f.asp?id=[ID]',
    );
    expect(relayOf('https://relay.example/t/cioc/ct/reg.asp?x=1')).toEqual({
      origin: 'https://relay.example',
      tunnel: 'cioc',
      publicBase: 'https://relay.example/t/cioc',
      inner: '/ct/reg.asp?x=1',
    });
    expect(relayOf('https://relay.example/tunnels/cioc/reg')).toBeNull();
  });
});

describe('URL element checks', () => {
  it('fails a server-called URL without its placeholder, or with it percent-encoded', () => {
    expect(checkUrlElement('resourceInfoURL', 'http://i/f?id=1', null).items).toContainEqual({
      level: 'error',
      text: 'lacks [ID]: Client Tracker puts the id of the item to fetch there',
    });
    const encoded = checkUrlElement('resourceInfoURL', 'http://i/f?id=%5BID%5D', null).items;
    expect(encoded.filter((i) => i.level === 'error')).toEqual([
      { level: 'error', text: expect.stringContaining('holds %5BID%5D: a percent-encoded placeholder') },
    ]);
  });

  it('warns about unknown or misplaced placeholders and relative URLs', () => {
    const items = checkUrlElement('resourceSummaryURL', 'http://i/p?ids=[IDS]&k=[KEY]&x=[id]', null).items;
    expect(items.map((i) => i.level)).toEqual(['info', 'ok', 'warn', 'warn']);
    expect(checkUrlElement('launchURL', '/ct/launch', null).items[0]).toEqual({
      level: 'warn',
      text: 'is not an absolute http:// or https:// URL',
    });
  });
});

describe('runCheck with a stubbed fetchText', () => {
  const reg = 'http://intranet.example/ct/ctregister.asp';

  it('fetches taxonomy terms with the ids percent-encoded and comma-joined', async () => {
    const fetchText = stub({
      [reg]: answer(registrationXml(fullUrls('http://intranet.example'))),
      'http://intranet.example/ct/ctfetchtax.asp?IDList=a%2Cb,%C3%A9': answer(
        `<response xmlns="${NS}"><taxonomy><entry code="BD" term="Food"/><entry code="BH" term="Housing"/></taxonomy></response>`,
      ),
    });
    const { ok, report } = await runCheck({ registrationUrl: reg, taxonomyIds: ['a,b', 'é'], fetchText });
    expect(ok).toBe(true);
    expect(report.taxonomy?.entries).toHaveLength(2);
    expect(report.taxonomy?.items).toContainEqual({ level: 'info', text: 'returned 2 taxonomy entries: BD "Food", BH "Housing"' });
  });

  it('fails an item answer whose payload is taxonomy, and warns about an id mismatch', async () => {
    const fetchText = stub({
      [reg]: answer(registrationXml(fullUrls('http://intranet.example'))),
      'http://intranet.example/ct/ctfetch.asp?num=1': answer(`<response xmlns="${NS}"><taxonomy/></response>`),
      'http://intranet.example/ct/ctfetch.asp?num=2': answer(
        `<response xmlns="${NS}"><resourceInfo><id>02</id><name>N</name><url>http://i/2</url></resourceInfo></response>`,
      ),
    });
    const first = await runCheck({ registrationUrl: reg, id: '1', fetchText });
    expect(first.ok).toBe(false);
    expect(first.report.fetch?.items).toContainEqual({ level: 'error', text: 'the answer holds <taxonomy>; resourceInfoURL must answer <resourceInfo>' });
    const second = await runCheck({ registrationUrl: reg, id: '2', fetchText });
    expect(second.ok).toBe(true);
    expect(second.report.warnings).toBe(1);
  });

  it('reports a registration <error> answer and a missing Content-Type', async () => {
    const fetchText = stub({ [reg]: answer(`<response xmlns="${NS}"><error>Closed</error></response>`, 200, {}) });
    const { ok, report } = await runCheck({ registrationUrl: reg, fetchText });
    expect(ok).toBe(false);
    expect(report.registration.items.map((i) => i.level)).toEqual(['warn', 'ok', 'error']);
    expect(report.registration.items[2]?.text).toBe('the provider answered with an error instead of a registration: "Closed"');
    expect(report.suggestion).toBeNull();
  });

  it('turns a fetchText failure into a ✗ naming the URL, with secrets redacted', async () => {
    const fetchText: FetchText = async () => {
      throw new Error('boom');
    };
    const { report } = await runCheck({ registrationUrl: `${reg}?key=s3cret`, fetchText });
    expect(report.registration.items).toEqual([{ level: 'error', text: `GET ${reg}?key=[REDACTED] failed: boom` }]);
  });
});

describe('the default fetchText', () => {
  it('gives up after the timeout', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`;
    try {
      await expect(createFetchText({ timeoutMs: 200 })(url)).rejects.toThrow(`GET ${url} failed: no complete answer within 0.2 s`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
