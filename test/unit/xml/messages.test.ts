import { describe, expect, it } from 'vitest';
import { CT_NAMESPACE, XmlInvalidError, type MessageKind } from '../../../src/xml/kinds.js';
import * as m from '../../../src/xml/messages.js';
import { validateXml } from '../../../src/xml/validate.js';

const NASTY = `Банк & Co/№5?#% <b>"quoted"</b> 'apos' 食物`;

interface RoundTrip {
  kind: MessageKind;
  message: unknown;
  build: () => string;
  parse: (text: string) => unknown;
}

function rt<T>(kind: MessageKind, message: T, build: (message: T) => string, parse: (text: string) => unknown): RoundTrip {
  return { kind, message, build: () => build(message), parse };
}

const ROUND_TRIPS: [string, RoundTrip][] = [
    ['registration (all URLs)', rt<m.RegistrationResponse>('registration', {
      kind: 'registration',
      resourceType: {
        name: NASTY,
        launchURL: 'https://intranet.example/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[KEY]',
        resourceInfoURL: 'https://intranet.example/ct/ctfetch.asp?num=[ID]',
        resourceSummaryURL: 'https://intranet.example/printlist.asp?IDList=[IDS]',
        resourceEmailURL: 'https://intranet.example/recordlist?IDList=[IDS]',
        resourceTaxonomyInfoURL: 'https://intranet.example/ct/ctfetchtax.asp?IDList=[IDS]',
      },
    }, m.buildRegistration, m.parseRegistration)],
    ['registration (required only)', rt<m.RegistrationResponse>('registration', {
      kind: 'registration',
      resourceType: { name: 'N', launchURL: 'http://i/l', resourceInfoURL: 'http://i/f?id=[ID]' },
    }, m.buildRegistration, m.parseRegistration)],
    ['registration error', rt<m.RegistrationResponse>('registration', { kind: 'error', error: NASTY }, m.buildRegistration, m.parseRegistration)],
    ['resourceInfo item', rt<m.ResourceInfoResponse>('resourceInfo', {
      kind: 'resourceInfo',
      resourceInfo: { id: '0123', name: NASTY, url: 'https://intranet.example/record?id=0123&x=<1>' },
    }, m.buildResourceInfo, m.parseResourceInfo)],
    ['resourceInfo taxonomy', rt<m.ResourceInfoResponse>('resourceInfo', {
      kind: 'taxonomy',
      entries: [{ code: 'BD-1800', term: 'Food Banks' }, { code: 'a"b\'c&<>', term: 'line\nbreak\ttab' }],
    }, m.buildResourceInfo, m.parseResourceInfo)],
    ['resourceInfo empty taxonomy', rt<m.ResourceInfoResponse>('resourceInfo', { kind: 'taxonomy', entries: [] }, m.buildResourceInfo, m.parseResourceInfo)],
    ['resourceInfo error', rt<m.ResourceInfoResponse>('resourceInfo', { kind: 'error', error: 'No record 12' }, m.buildResourceInfo, m.parseResourceInfo)],
    ['isInRequest', rt<m.IsInRequest>('isInRequest', { login: 'Пётр', key: 'k&y<"\'>', ctid: '042' }, m.buildIsInRequest, m.parseIsInRequest)],
    ['isInResponse yes', rt<m.IsInResponse>('isInResponse', { kind: 'yes', ids: ['0123', ' spaced ', 'A&B/C#D?'] }, m.buildIsInResponse, m.parseIsInResponse)],
    ['isInResponse yes + previous', rt<m.IsInResponse>('isInResponse', {
      kind: 'yes', ids: [], previousRequest: ['1', '2'],
    }, m.buildIsInResponse, m.parseIsInResponse)],
    ['isInResponse yes + empty previous', rt<m.IsInResponse>('isInResponse', {
      kind: 'yes', ids: ['1'], previousRequest: [],
    }, m.buildIsInResponse, m.parseIsInResponse)],
    ['isInResponse no', rt<m.IsInResponse>('isInResponse', { kind: 'no' }, m.buildIsInResponse, m.parseIsInResponse)],
    ['isInResponse error', rt<m.IsInResponse>('isInResponse', { kind: 'error', error: NASTY }, m.buildIsInResponse, m.parseIsInResponse)],
    ['multi-line error text', rt<m.IsInResponse>('isInResponse', {
      kind: 'error', error: '  line 1\n\tline 2\r\nline 3\r  ',
    }, m.buildIsInResponse, m.parseIsInResponse)],
    ['pushResource', rt<m.PushResource>('pushResource', {
      kind: 'pushResource', login: 'jsmith', key: 'secret', ctid: '42',
      resourceItem: { id: '0123', name: NASTY, url: 'https://intranet.example/r?id=0123&a=b' },
    }, m.buildPushResource, m.parsePushResource)],
    ['pushResourceRemove', rt<m.PushResource>('pushResource', {
      kind: 'pushResourceRemove', login: 'jsmith', key: 'secret', ctid: '42', resourceItem: { id: '0123' },
    }, m.buildPushResource, m.parsePushResource)],
    ['pushResourceResponse success', rt<m.PushResourceResponse>('pushResourceResponse', {
      kind: 'success', ids: ['0123', 'ZZZ'],
    }, m.buildPushResourceResponse, m.parsePushResourceResponse)],
    ['pushResourceResponse success, no ids', rt<m.PushResourceResponse>('pushResourceResponse', {
      kind: 'success', ids: [],
    }, m.buildPushResourceResponse, m.parsePushResourceResponse)],
    ['pushResourceResponse error', rt<m.PushResourceResponse>('pushResourceResponse', {
      kind: 'error', error: 'Request closed',
    }, m.buildPushResourceResponse, m.parsePushResourceResponse)],
];

describe.each(ROUND_TRIPS)('round trip: %s', (_name, { kind, message, build, parse }) => {
  const xml = build();

  it('builds a declaration, the default namespace and schema-valid XML', () => {
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<')).toBe(true);
    expect(xml).toContain(`xmlns="${CT_NAMESPACE}"`);
    expect(validateXml(kind, xml)).toEqual({ ok: true });
  });

  it('parses back to the same message', () => {
    expect(parse(xml)).toEqual(message);
  });
});

describe('values', () => {
  it('keeps ids as strings, leading zeros and spaces included', () => {
    const parsed = m.parseIsInResponse(
      `<response xmlns="${CT_NAMESPACE}"><yes><id>0123</id><id> 7 </id><id>1e3</id></yes></response>`,
    );
    expect(parsed).toEqual({ kind: 'yes', ids: ['0123', ' 7 ', '1e3'] });
  });

  it('escapes & < > in text and quotes in attributes, and keeps non-Latin text as UTF-8', () => {
    const xml = m.buildResourceInfo({ kind: 'resourceInfo', resourceInfo: { id: 'a&b', name: NASTY, url: 'u' } });
    expect(xml).toContain('<id>a&amp;b</id>');
    expect(xml).toContain('Банк &amp; Co/№5?#% &lt;b&gt;');
    const tax = m.buildResourceInfo({ kind: 'taxonomy', entries: [{ code: `"'`, term: 't' }] });
    expect(tax).toContain('code="&quot;&apos;"');
  });

  it('replaces characters XML cannot carry instead of writing broken XML', () => {
    const xml = m.buildErrorResponse('bad\u0001char');
    expect(validateXml('isInResponse', xml)).toEqual({ ok: true });
    expect(m.parseIsInResponse(xml)).toEqual({ kind: 'error', error: 'bad\uFFFDchar' });
  });

  it('decodes character references and CDATA', () => {
    const parsed = m.parseResourceInfo(
      `<response xmlns="${CT_NAMESPACE}"><resourceInfo><id>&#48;&#x31;</id><name><![CDATA[a & <b>]]></name><url>u</url></resourceInfo></response>`,
    );
    expect(parsed).toEqual({ kind: 'resourceInfo', resourceInfo: { id: '01', name: 'a & <b>', url: 'u' } });
  });

  it('tolerates a BOM and blank lines before the declaration, as text or bytes', () => {
    const text = `\uFEFF\n\n  \r\n<?xml version="1.0" encoding="UTF-8"?>\n<response xmlns="${CT_NAMESPACE}"><no/></response>\n\n`;
    expect(m.parseIsInResponse(text)).toEqual({ kind: 'no' });
    expect(m.parseIsInResponse(Buffer.from(text, 'utf8'))).toEqual({ kind: 'no' });
  });

  it('reads a document declared as ISO-8859-1 from bytes', () => {
    const bytes = Buffer.concat([
      Buffer.from(`<?xml version="1.0" encoding="ISO-8859-1"?><response xmlns="${CT_NAMESPACE}"><error>caf`),
      Buffer.from([0xe9]),
      Buffer.from('</error></response>'),
    ]);
    expect(m.parseIsInResponse(bytes)).toEqual({ kind: 'error', error: 'café' });
    expect(validateXml('isInResponse', bytes)).toEqual({ ok: true });
  });
});

describe('parse errors', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['yes and no together', () => m.parseIsInResponse(`<response xmlns="${CT_NAMESPACE}"><yes/><no/></response>`), /exactly one of <yes>, <no> or <error>/],
    ['error next to a payload', () => m.parsePushResourceResponse(`<response xmlns="${CT_NAMESPACE}"><success/><ids/><error>x</error></response>`), /holds only <error>/],
    ['wrong root', () => m.parseIsInRequest(`<response xmlns="${CT_NAMESPACE}"><no/></response>`), /Expected root element <isInRequest>, found <response>/],
    ['missing element', () => m.parseRegistration(`<response xmlns="${CT_NAMESPACE}"><resourceType><name>n</name></resourceType></response>`), /<resourceType> has no <launchURL>/],
    ['not well-formed', () => m.parseIsInResponse(`<response xmlns="${CT_NAMESPACE}">\n<yes></no></response>`), /Line 2/],
    ['undefined entity', () => m.parseIsInResponse(`<response xmlns="${CT_NAMESPACE}"><error>&nbsp;</error></response>`), /In <error>: An entity reference is not defined/],
    ['DOCTYPE', () => m.parseIsInResponse(`<!DOCTYPE r [<!ENTITY a "b">]><response xmlns="${CT_NAMESPACE}"><error>&a;</error></response>`), /DOCTYPE declarations are refused/],
    ['DOCTYPE inside the root', () => m.parseIsInResponse(`<response xmlns="${CT_NAMESPACE}"><!DOCTYPE r [<!ENTITY a "b">]><error>&a;</error></response>`), /DOCTYPE declarations are refused/],
  ];

  it.each(bad)('%s → XmlInvalidError (CTB_XML_INVALID)', (_name, fn, message) => {
    let caught: unknown;
    try {
      fn();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(XmlInvalidError);
    expect((caught as XmlInvalidError).code).toBe('CTB_XML_INVALID');
    expect((caught as XmlInvalidError).message).toMatch(message);
  });

  it('never quotes a key in a parse error', () => {
    expect(() => m.parseIsInRequest(`<isInRequest xmlns="${CT_NAMESPACE}"><login>a</login><key>s3cr&et;x</key><ctid>1</ctid></isInRequest>`)).toThrow(
      /^In <key>: An entity reference is not defined/,
    );
    try {
      m.parseIsInRequest(`<isInRequest xmlns="${CT_NAMESPACE}"><login>a</login><key>s3cr&et;x</key><ctid>1</ctid></isInRequest>`);
    } catch (err) {
      expect(String((err as Error).message)).not.toMatch(/s3cr|et;/);
    }
  });
});
