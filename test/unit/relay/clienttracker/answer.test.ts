import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CtbridgeError, ERROR_CODES, type ErrorParams } from '../../../../src/errors.js';
import { fromWire, toWire } from '../../../../src/mux/wire-error.js';
import { processAnswer } from '../../../../relay/clienttracker/answer.js';
import { errorText } from '../../../../relay/clienttracker/error-text.js';

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

/** The text a CT user reads for an error that came from the other process (a RESET): code and params only. */
function textAfterTheWire(code: ConstructorParameters<typeof CtbridgeError>[0], message: string, params?: ErrorParams): string {
  const err = fromWire(JSON.parse(JSON.stringify(toWire(new CtbridgeError(code, message, params ? { params } : {})))), 'the agent');
  return errorText(err.code, { tunnel: 'cioc', ...err.params });
}

describe('error texts', () => {
  it('has a sentence for every error code, naming the tunnel, ending in a full stop', () => {
    for (const code of Object.keys(ERROR_CODES)) {
      const text = errorText(code, { tunnel: 'cioc' });
      expect(text, code).toContain("'cioc'");
      expect(text, code).toMatch(/\.$/);
      expect(text, code).not.toMatch(/undefined|\(\)|\s{2}/);
    }
    expect(errorText('CTB_FROM_THE_FUTURE', { tunnel: 'cioc' })).toContain('(CTB_FROM_THE_FUTURE)');
    expect(errorText('<b>CTB_X</b>', { tunnel: 'cioc' })).toContain('(CTB_X)');
  });

  it('renders the numbers an error carries as data, after they crossed the wire', () => {
    expect(textAfterTheWire('CTB_REQUEST_TIMEOUT', 'x', { seconds: 300 })).toContain("The provider behind 'cioc' did not answer within 300 seconds;");
    expect(textAfterTheWire('CTB_TARGET_TIMEOUT', 'x', { seconds: 2.5 })).toContain('did not answer within 2.5 seconds;');
    expect(textAfterTheWire('CTB_TARGET_TIMEOUT', 'x', { seconds: 1 })).toContain('within 1 second;');
    expect(textAfterTheWire('CTB_BODY_TOO_LARGE', 'x', { bytes: 1024, body: 'request' })).toBe(
      "The request to the provider behind 'cioc' is larger than the bridge allows (1024 bytes); it was not sent.",
    );
    expect(textAfterTheWire('CTB_BODY_TOO_LARGE', 'x', { bytes: 2048, body: 'answer' })).toBe(
      "The provider's answer for 'cioc' is larger than the bridge allows (2048 bytes); ask the relay operator to raise the limit if such answers are expected.",
    );
    expect(textAfterTheWire('CTB_CT_UNREACHABLE', 'x', { ctOrigin: 'https://ct.example', problem: 'connection refused' })).toContain(
      'could not reach Client Tracker at https://ct.example (connection refused);',
    );
    expect(textAfterTheWire('CTB_XML_INVALID', 'x', { problem: 'line 3, element <ctid>: too long' })).toContain('(line 3, element <ctid>: too long)');
  });

  it('never reads numbers (or anything else) out of the English message', () => {
    const timeout = textAfterTheWire('CTB_REQUEST_TIMEOUT', "tunnel 'cioc' did not complete the request within 300000 ms");
    expect(timeout).toContain('did not answer in time;');
    expect(timeout).not.toMatch(/\d/);
    const large = textAfterTheWire('CTB_BODY_TOO_LARGE', 'the request body is larger than the limit of 1024 bytes');
    expect(large).not.toContain('1024');
    const bad = textAfterTheWire('CTB_BAD_REQUEST', 'path "/ct/x?key=SECRETKEY" contains a ".." segment');
    expect(bad).not.toContain('SECRETKEY');
  });

  it("shows a peer's problem text cleaned and capped (fromWire), never raw", () => {
    const text = textAfterTheWire('CTB_UPSTREAM_INVALID', 'x', { problem: `line 1\r\n<script>${'p'.repeat(500)}` });
    expect(text).not.toMatch(/[\r\n]/);
    expect(text.length).toBeLessThan(600);
  });
});
