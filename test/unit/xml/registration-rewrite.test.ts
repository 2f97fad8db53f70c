import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CT_NAMESPACE, XmlInvalidError } from '../../../src/xml/kinds.js';
import { parseRegistration } from '../../../src/xml/messages.js';
import { publicUrlFor, rewriteRegistration } from '../../../src/xml/registration-rewrite.js';
import { validateXml } from '../../../src/xml/validate.js';

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../fixtures/xml/valid/registration/${name}`, import.meta.url)), 'utf8');

const TUNNEL = { targetBase: 'https://intranet.example', publicBase: 'https://relay.example/t/toronto/' };
const toPublic = (url: string) => publicUrlFor(url, TUNNEL);

describe('rewriteRegistration', () => {
  const original = fixture('full.xml');
  const { xml, rewritten, skipped } = rewriteRegistration(original, { rewriteUrl: toPublic });

  it('rewrites the two server-called URLs, placeholders and query intact', () => {
    expect(rewritten).toEqual([
      {
        element: 'resourceInfoURL',
        from: 'https://intranet.example/ct/ctfetch.asp?num=[ID]',
        to: 'https://relay.example/t/toronto/ct/ctfetch.asp?num=[ID]',
      },
      {
        element: 'resourceTaxonomyInfoURL',
        from: 'https://intranet.example/ct/ctfetchtax.asp?IDList=[IDS]',
        to: 'https://relay.example/t/toronto/ct/ctfetchtax.asp?IDList=[IDS]',
      },
    ]);
    expect(skipped).toEqual([]);
    expect(xml).not.toContain('%5B');
  });

  it('changes no other byte: browser URLs, &amp;, whitespace, declaration', () => {
    const expected = original
      .replace('https://intranet.example/ct/ctfetch.asp', 'https://relay.example/t/toronto/ct/ctfetch.asp')
      .replace('https://intranet.example/ct/ctfetchtax.asp', 'https://relay.example/t/toronto/ct/ctfetchtax.asp');
    expect(xml).toBe(expected);
    expect(xml).toContain('<launchURL>https://intranet.example/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>');
  });

  it('stays schema-valid and parses to the new URLs', () => {
    expect(validateXml('registration', xml)).toEqual({ ok: true });
    const parsed = parseRegistration(xml);
    expect(parsed.kind === 'registration' && parsed.resourceType.resourceInfoURL).toBe(
      'https://relay.example/t/toronto/ct/ctfetch.asp?num=[ID]',
    );
  });

  it('keeps a BOM and blank lines byte for byte', () => {
    const withBom = fixture('bom-and-blank-lines.xml');
    const out = rewriteRegistration(withBom, { rewriteUrl: toPublic }).xml;
    expect(out.startsWith('\uFEFF\n\n  \n<?xml')).toBe(true);
    expect(out.length - withBom.length).toBe(2 * ('https://relay.example/t/toronto'.length - 'https://intranet.example'.length));
  });

  it('decodes entities for rewriteUrl and re-escapes the result', () => {
    const doc = `<response xmlns="${CT_NAMESPACE}"><resourceType><name>n</name><launchURL>l</launchURL>` +
      `<resourceInfoURL>\n   https://intranet.example/f?a=1&amp;id=[ID]&#38;x=&lt;y&gt;\n</resourceInfoURL></resourceType></response>`;
    const seen: string[] = [];
    const out = rewriteRegistration(doc, { rewriteUrl: (u) => (seen.push(u), toPublic(u)) });
    expect(seen).toEqual(['https://intranet.example/f?a=1&id=[ID]&x=<y>']);
    expect(out.xml).toContain('<resourceInfoURL>\n   https://relay.example/t/toronto/f?a=1&amp;id=[ID]&amp;x=&lt;y&gt;\n</resourceInfoURL>');
  });

  it('handles prefixed elements and CDATA', () => {
    const doc = fixture('prefixed-namespace.xml').replace('http://i/f?id=[ID]', '<![CDATA[https://intranet.example/f?id=[ID]&x]]>');
    const out = rewriteRegistration(doc, { rewriteUrl: toPublic });
    expect(out.xml).toContain('<ct:resourceInfoURL>https://relay.example/t/toronto/f?id=[ID]&amp;x</ct:resourceInfoURL>');
    expect(validateXml('registration', out.xml)).toEqual({ ok: true });
  });

  it('leaves URLs outside the tunnel target as they are, and reports them', () => {
    const out = rewriteRegistration(fixture('required-only.xml'), { rewriteUrl: toPublic });
    expect(out.xml).toBe(fixture('required-only.xml'));
    expect(out.rewritten).toEqual([]);
    expect(out.skipped).toEqual([
      { element: 'resourceInfoURL', url: 'http://intranet.example/fetch?id=[ID]', reason: expect.stringContaining('rewriteUrl returned null') },
    ]);
  });

  it('rewrites other elements when asked (e.g. launchURL)', () => {
    const out = rewriteRegistration(original, { rewriteUrl: toPublic, elements: ['launchURL'] });
    expect(out.rewritten.map((r) => r.to)).toEqual([
      'https://relay.example/t/toronto/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[KEY]',
    ]);
    expect(out.xml).toContain('<launchURL>https://relay.example/t/toronto/ct/ctlaunch.asp?ctid=[CTID]&amp;login=[LOGIN]&amp;key=[KEY]</launchURL>');
  });

  it('ignores same-named elements in another namespace', () => {
    const doc = `<response xmlns="${CT_NAMESPACE}" xmlns:o="urn:other"><o:resourceInfoURL>https://intranet.example/x</o:resourceInfoURL></response>`;
    expect(rewriteRegistration(doc, { rewriteUrl: toPublic }).xml).toBe(doc);
  });

  it('refuses a DOCTYPE and mismatched tags', () => {
    expect(() => rewriteRegistration(`<!DOCTYPE r><response/>`, { rewriteUrl: toPublic })).toThrow(XmlInvalidError);
    expect(() => rewriteRegistration(`<response><resourceInfoURL>x</response>`, { rewriteUrl: toPublic })).toThrow(/does not match/);
  });
});

describe('publicUrlFor', () => {
  it.each([
    ['https://intranet.example/ct/f.asp?num=[ID]', 'https://relay.example/t/toronto/ct/f.asp?num=[ID]'],
    ['HTTPS://Intranet.EXAMPLE:443/ct/f.asp?num=[ID]', 'https://relay.example/t/toronto/ct/f.asp?num=[ID]'],
    ['https://intranet.example', 'https://relay.example/t/toronto'],
    ['https://intranet.example?x=%5B1%5D&y=[ID]', 'https://relay.example/t/toronto?x=%5B1%5D&y=[ID]'],
    ['https://intranet.example/a b/Ж?q=a+b#frag', 'https://relay.example/t/toronto/a b/Ж?q=a+b#frag'],
    ['http://intranet.example/ct/f', null],
    ['https://intranet.example:8443/ct/f', null],
    ['https://other.example/ct/f', null],
    ['https://user:pw@intranet.example/ct/f', null],
    ['/relative/[ID]', null],
  ])('%s → %s', (url, expected) => {
    expect(publicUrlFor(url, TUNNEL)).toBe(expected);
  });

  it('matches a base path only at a segment boundary', () => {
    const opts = { targetBase: 'http://intranet.example:80/app/', publicBase: 'https://relay.example/t/x' };
    expect(publicUrlFor('http://intranet.example/app/f?id=[ID]', opts)).toBe('https://relay.example/t/x/f?id=[ID]');
    expect(publicUrlFor('http://intranet.example/app?id=[ID]', opts)).toBe('https://relay.example/t/x?id=[ID]');
    expect(publicUrlFor('http://intranet.example/application/f', opts)).toBeNull();
    expect(publicUrlFor('http://intranet.example/APP/f', opts)).toBeNull();
  });

  it('accepts several target spellings; localhost and 127.0.0.1 only when listed', () => {
    const one = { targetBase: 'http://localhost:8080', publicBase: 'https://relay.example/t/x' };
    expect(publicUrlFor('http://127.0.0.1:8080/f', one)).toBeNull();
    const both = { targetBase: ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080'], publicBase: one.publicBase };
    expect(publicUrlFor('http://127.0.0.1:8080/f', both)).toBe('https://relay.example/t/x/f');
    expect(publicUrlFor('http://[::1]:8080/f', both)).toBe('https://relay.example/t/x/f');
  });

  it('prefers the longest matching base path', () => {
    const opts = { targetBase: ['http://i.example', 'http://i.example/app'], publicBase: 'https://relay.example/t/x' };
    expect(publicUrlFor('http://i.example/app/f', opts)).toBe('https://relay.example/t/x/f');
  });

  it('rejects a target base that is not an absolute URL', () => {
    expect(() => publicUrlFor('http://i/x', { targetBase: 'intranet', publicBase: 'https://r' })).toThrow(/not an absolute URL/);
  });
});
