import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../../src/errors.js';
import { processAnswer } from '../../../../relay/clienttracker/answer.js';
import { egressErrorText, errorText, paramsFromError } from '../../../../relay/clienttracker/error-text.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/xml/', import.meta.url));
/** What a provider answers to Client Tracker's GETs. */
const ANSWER_KINDS = ['registration', 'resourceInfo'];
const REWRITE = ['resourceInfoURL', 'resourceTaxonomyInfoURL'];
const PUBLIC = 'https://relay.example/t/cioc/';

function fixtures(validity: 'valid' | 'invalid', kind: string): { name: string; body: Buffer }[] {
  const dir = `${FIXTURES}${validity}/${kind}/`;
  return readdirSync(dir).map((name) => ({ name, body: readFileSync(dir + name) }));
}

/** Fixtures that are invalid only as the kind they are filed under: by their own root they are a fine answer. */
const OTHER_KIND = new Set(['registration/wrong-root.xml', 'resourceInfo/registration-answer.xml']);
/** Passed on in every mode (docs/client-tracker-protocol.md, "Conventions"). */
const QUIRK = 'resourceInfo/https-namespace-quirk.xml';

describe('processAnswer on the schema fixtures', () => {
  for (const kind of ANSWER_KINDS) {
    for (const { name, body } of fixtures('valid', kind)) {
      it(`enforce passes valid ${kind}/${name} with no findings`, () => {
        const out = processAnswer({ body, mode: 'enforce', rewrite: REWRITE, publicBase: PUBLIC });
        expect(out.findings).toEqual([]);
        expect(out.replace).toBeUndefined();
      });
    }
    for (const { name, body } of fixtures('invalid', kind)) {
      const id = `${kind}/${name}`;
      if (OTHER_KIND.has(id)) continue;
      const expected = /expect-error: line (\d+)(?:, element (\S+))?/.exec(body.toString('utf8'));
      it(`enforce replaces invalid ${id}${id === QUIRK ? ' (except the quirk)' : ''}; report passes it`, () => {
        const enforce = processAnswer({ body, mode: 'enforce', rewrite: REWRITE, publicBase: PUBLIC });
        const report = processAnswer({ body, mode: 'report', rewrite: REWRITE, publicBase: PUBLIC });
        expect(report.replace).toBeUndefined();
        expect(report.findings.length).toBeGreaterThan(0);
        if (id === QUIRK) {
          expect(enforce.replace).toBeUndefined();
          expect(enforce.findings.map((f) => f.reason)).toEqual(['namespace-quirk']);
          return;
        }
        expect(enforce.replace?.problem).toBeDefined();
        expect(enforce.replace?.problem).toMatch(new RegExp(`^line ${expected?.[1]}${expected?.[2] ? `, element <${expected[2]}>` : ''}:`));
      });
    }
  }

  it('never carries a key value into a problem text', () => {
    const body = Buffer.from(
      '<response xmlns="http://clienttracker.cioc.ca/schema/"><resourceInfo><id>1</id><name>n</name><url>u</url><key>TOPSECRET</key></resourceInfo></response>',
    );
    const out = processAnswer({ body, mode: 'enforce', rewrite: REWRITE, publicBase: PUBLIC });
    expect(out.replace?.problem).toBeDefined();
    expect(JSON.stringify(out)).not.toContain('TOPSECRET');
  });

  it('rewrites a single-byte-encoded registration without touching its other bytes', () => {
    const xml = `<?xml version="1.0" encoding="ISO-8859-1"?>\n<response xmlns="http://clienttracker.cioc.ca/schema/"><resourceType><name>Services fran\u00e7ais</name><launchURL>http://i/l</launchURL><resourceInfoURL>http://i/ct/f?id=[ID]</resourceInfoURL></resourceType></response>\n`;
    const body = Buffer.from(xml, 'latin1');
    const out = processAnswer({ body, mode: 'enforce', rewrite: REWRITE, publicBase: PUBLIC });
    expect(out.findings).toEqual([]);
    expect(out.body?.equals(Buffer.from(xml.replace('http://i/ct/f', 'https://relay.example/t/cioc/ct/f'), 'latin1'))).toBe(true);
  });
});

describe('error texts', () => {
  it('has a sentence for every error code, naming the tunnel, ending in a full stop', () => {
    for (const code of Object.keys(ERROR_CODES)) {
      const text = errorText(code, { tunnel: 'cioc' });
      expect(text, code).toContain("'cioc'");
      expect(text, code).toMatch(/\.$/);
      expect(text, code).not.toMatch(/undefined|\(\)|\s{2}/);
    }
    expect(errorText('CTB_FROM_THE_FUTURE', { tunnel: 'cioc' })).toContain('(CTB_FROM_THE_FUTURE)');
    expect(egressErrorText('CTB_CT_UNREACHABLE', { tunnel: 'cioc' })).toBe(errorText('CTB_CT_UNREACHABLE', { tunnel: 'cioc' }));
  });

  it('reads numbers out of bridge messages', () => {
    expect(paramsFromError({ code: 'CTB_REQUEST_TIMEOUT', message: 'within 300000 ms' }, 'cioc')).toEqual({ tunnel: 'cioc', seconds: 300 });
    expect(paramsFromError({ code: 'CTB_TARGET_TIMEOUT', message: 'no answer in 2.5 s' }, 'cioc')).toEqual({ tunnel: 'cioc', seconds: 2.5 });
    expect(paramsFromError({ code: 'CTB_BODY_TOO_LARGE', message: 'the request body is larger than the limit of 1024 bytes' }, 'cioc')).toEqual({
      tunnel: 'cioc',
      bytes: 1024,
      body: 'request',
    });
    expect(errorText('CTB_TARGET_TIMEOUT', { tunnel: 'cioc', seconds: 1 })).toContain('within 1 second;');
    expect(errorText('CTB_TARGET_TIMEOUT', { tunnel: 'cioc' })).toContain('did not answer in time;');
  });
});
