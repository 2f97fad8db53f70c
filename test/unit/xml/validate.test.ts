import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { detectMessage } from '../../../src/xml/detect.js';
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, XmlInvalidError, formatXmlIssues } from '../../../src/xml/kinds.js';
import { loadSchemas, validateXml } from '../../../src/xml/validate.js';

const BOMB = readFileSync(
  fileURLToPath(new URL('../../fixtures/xml/invalid/registration/doctype-entity-bomb.xml', import.meta.url)),
  'utf8',
);

describe('validateXml', () => {
  it('compiles the schemas once', () => {
    expect(loadSchemas()).toBe(loadSchemas());
    expect([...loadSchemas().keys()]).toHaveLength(6);
  });

  // Fast because nothing expands it: the parser is never called (no wall-clock bound, which a loaded machine breaks).
  it('refuses a billion-laughs DOCTYPE before libxml2 sees it', async () => {
    loadSchemas();
    const libxml2 = await import('libxml2-wasm');
    const parse = vi.spyOn(libxml2.XmlDocument, 'fromString');
    const result = validateXml('registration', BOMB);
    expect(parse).not.toHaveBeenCalled();
    // The spy does see a document that gets parsed.
    validateXml('isInResponse', `<response xmlns="${CT_NAMESPACE}"/>`);
    expect(parse).toHaveBeenCalledTimes(1);
    parse.mockRestore();
    expect(result).toEqual({
      ok: false,
      errors: [{ line: 2, message: expect.stringMatching(/^<!DOCTYPE declarations are refused/) }],
    });
  });

  it.each([
    ['lower-case doctype', '<!doctype response><response/>'],
    ['after a comment and declaration', '<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE response SYSTEM "http://evil.example/x.dtd">\n<response/>'],
    ['a bare ENTITY', `<response xmlns="${CT_NAMESPACE}"><!ENTITY x "y"></response>`],
  ])('refuses %s', (_name, text) => {
    const result = validateXml('isInResponse', text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/declarations are refused/);
  });

  it('reports line numbers of the document as received, after a BOM and blank lines', () => {
    const text = `\uFEFF\n\n<?xml version="1.0"?>\n<response xmlns="${CT_NAMESPACE}">\n  <yes>\n    <id>${'x'.repeat(51)}</id>\n  </yes>\n</response>`;
    const result = validateXml('isInResponse', text);
    expect(result).toEqual({
      ok: false,
      errors: [{ line: 6, element: 'id', message: expect.stringContaining("exceeds the allowed maximum length of '50'") }],
    });
    if (!result.ok) expect(formatXmlIssues(result.errors)).toMatch(/^line 6, element <id>: \[facet 'maxLength'\]/);
  });

  it('shifts the line numbers libxml2 cites inside its messages too', () => {
    const result = validateXml('isInResponse', `\n\n<response xmlns="${CT_NAMESPACE}">\n<yes></no></response>`);
    expect(result).toEqual({ ok: false, errors: [{ line: 4, message: 'Opening and ending tag mismatch: yes line 4 and no' }] });
  });

  it('says which element was expected, without namespace noise', () => {
    const result = validateXml('registration', `<response xmlns="${CT_NAMESPACE}"><resourceType><name>n</name><resourceInfoURL>u</resourceInfoURL></resourceType></response>`);
    expect(result).toEqual({
      ok: false,
      errors: [{ line: 1, element: 'resourceInfoURL', message: 'This element is not expected. Expected is ( launchURL ).' }],
    });
  });

  it('never shows the key in an error', () => {
    const result = validateXml('isInRequest', `<isInRequest xmlns="${CT_NAMESPACE}"><login>a</login><key>topsecret<x/></key><ctid>1</ctid></isInRequest>`);
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain('topsecret');
  });

  it('names the https namespace quirk', () => {
    const result = validateXml('isInResponse', `<response xmlns="${CT_NAMESPACE_HTTPS_QUIRK}"><error>x</error></response>`);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors[0]?.message).toMatch(/https form, a known provider quirk/);
  });

  it('rejects bytes that are not UTF-8', () => {
    const result = validateXml('isInResponse', Buffer.from([0x3c, 0x72, 0xff, 0x3e]));
    expect(result).toEqual({ ok: false, errors: [{ line: 1, message: 'bytes are not valid utf-8' }] });
  });

  it('rejects an empty document', () => {
    expect(validateXml('isInResponse', '\uFEFF \n ')).toEqual({ ok: false, errors: [{ line: 2, message: 'the document is empty' }] });
  });
});

describe('detectMessage', () => {
  const ns = `xmlns="${CT_NAMESPACE}"`;
  it.each([
    [`<response ${ns}><resourceType/></response>`, 'registration', 'resourceType'],
    [`<response ${ns}><resourceInfo/></response>`, 'resourceInfo', 'resourceInfo'],
    [`<response ${ns}>\n  <!-- c --><taxonomy/></response>`, 'resourceInfo', 'taxonomy'],
    [`<response ${ns}><yes/></response>`, 'isInResponse', 'yes'],
    [`<response ${ns}><no/></response>`, 'isInResponse', 'no'],
    [`<response ${ns}><success/><ids/></response>`, 'pushResourceResponse', 'success'],
    [`<response ${ns}><constructor/></response>`, null, 'constructor'],
    [`<isInRequest ${ns}/>`, 'isInRequest', null],
    [`<pushResource ${ns}/>`, 'pushResource', null],
    [`<pushResourceRemove ${ns}/>`, 'pushResource', null],
    [`<ct:response xmlns:ct="${CT_NAMESPACE}"><ct:no/></ct:response>`, 'isInResponse', 'no'],
  ])('%s → %s', (text, kind, payload) => {
    expect(detectMessage(text)).toMatchObject({ kind, payload, namespace: CT_NAMESPACE, namespaceQuirk: false });
  });

  it('recognises an error response without guessing its kind', () => {
    expect(detectMessage(`<response xmlns="${CT_NAMESPACE}"><error>x</error></response>`)).toEqual({
      root: 'response',
      namespace: CT_NAMESPACE,
      payload: 'error',
      kind: null,
      isErrorResponse: true,
      namespaceQuirk: false,
    });
  });

  it('reports the https namespace quirk but still detects the message', () => {
    const detected = detectMessage(Buffer.from(`\uFEFF\n<response xmlns="${CT_NAMESPACE_HTTPS_QUIRK}"><error>x</error></response>`));
    expect(detected).toMatchObject({ isErrorResponse: true, namespaceQuirk: true, namespace: CT_NAMESPACE_HTTPS_QUIRK });
  });

  it('knows no kind for a foreign namespace or none', () => {
    expect(detectMessage('<response><no/></response>')).toMatchObject({ kind: null, namespace: null });
    expect(detectMessage('<response xmlns="urn:other"><no/></response>')).toMatchObject({ kind: null, namespace: 'urn:other' });
  });

  it('refuses a DOCTYPE', () => {
    expect(() => detectMessage(BOMB)).toThrow(XmlInvalidError);
  });
});
