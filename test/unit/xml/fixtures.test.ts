/**
 * Every file under test/fixtures/xml/{valid,invalid}/<kind>/ is one case.
 * Invalid fixtures end with `<!-- expect-error: line N[, element E] -->`:
 * some reported error must carry that line (and element).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectMessage } from '../../../src/xml/detect.js';
import { MESSAGE_KINDS, type MessageKind } from '../../../src/xml/kinds.js';
import {
  parseIsInRequest,
  parseIsInResponse,
  parsePushResource,
  parsePushResourceResponse,
  parseRegistration,
  parseResourceInfo,
} from '../../../src/xml/messages.js';
import { validateXml } from '../../../src/xml/validate.js';

const ROOT = fileURLToPath(new URL('../../fixtures/xml/', import.meta.url));

const PARSERS: Record<MessageKind, (input: Uint8Array) => unknown> = {
  registration: parseRegistration,
  resourceInfo: parseResourceInfo,
  isInRequest: parseIsInRequest,
  isInResponse: parseIsInResponse,
  pushResource: parsePushResource,
  pushResourceResponse: parsePushResourceResponse,
};

function cases(validity: 'valid' | 'invalid'): [MessageKind, string][] {
  return readdirSync(ROOT + validity).flatMap((kind) =>
    readdirSync(`${ROOT}${validity}/${kind}`).map((file): [MessageKind, string] => [kind as MessageKind, file]),
  );
}

describe('fixture layout', () => {
  it('has valid and invalid fixtures for every message kind', () => {
    for (const validity of ['valid', 'invalid'] as const) {
      expect(readdirSync(ROOT + validity).sort()).toEqual([...MESSAGE_KINDS].sort());
    }
  });
});

describe.each(cases('valid'))('valid/%s/%s', (kind, file) => {
  const bytes = readFileSync(`${ROOT}valid/${kind}/${file}`);

  it('validates', () => {
    expect(validateXml(kind, bytes)).toEqual({ ok: true });
  });

  it('parses', () => {
    expect(() => PARSERS[kind](bytes)).not.toThrow();
  });

  it('is detected as its kind (or as an error response)', () => {
    const detected = detectMessage(bytes);
    if (detected.isErrorResponse) expect(detected.kind).toBeNull();
    else expect(detected.kind).toBe(kind);
  });
});

describe.each(cases('invalid'))('invalid/%s/%s', (kind, file) => {
  const text = readFileSync(`${ROOT}invalid/${kind}/${file}`, 'utf8');
  const expectation = /<!-- expect-error: line (\d+)(?:, element (\S+))? -->/.exec(text);

  it('states its expected error', () => {
    expect(expectation).not.toBeNull();
  });

  it('is rejected with the expected line and element', () => {
    const result = validateXml(kind, text);
    expect(result.ok).toBe(false);
    if (result.ok || !expectation) return;
    const [, line, element] = expectation;
    const match = result.errors.find((e) => e.line === Number(line) && (element === undefined || e.element === element));
    expect(match, JSON.stringify(result.errors)).toBeDefined();
    for (const e of result.errors) expect(e.message.length).toBeGreaterThan(10);
  });
});
