import { describe, expect, it } from 'vitest';
import { UNTRUSTED_MAX, untrusted } from '../../src/log-text.js';

describe('untrusted', () => {
  it('passes short plain strings through, and keeps absent values absent', () => {
    expect(untrusted('vm-01.corp.example')).toBe('vm-01.corp.example');
    expect(untrusted('ctbridge/0.1.0 (Zoë, 日本)')).toBe('ctbridge/0.1.0 (Zoë, 日本)');
    expect(untrusted('')).toBe('');
    expect(untrusted(undefined)).toBeUndefined();
    expect(untrusted(null)).toBeUndefined();
  });

  it(`caps at ${UNTRUSTED_MAX} characters by default, saying how many were cut`, () => {
    const huge = 'h'.repeat(500_000);
    const out = untrusted(huge)!;
    expect(out).toBe(`${'h'.repeat(200)}…[+499800 chars]`);
    expect(untrusted('abcdef', 3)).toBe('abc…[+3 chars]');
    expect(untrusted('abc', 3)).toBe('abc');
    expect(untrusted('abc', 0)).toBe('…[+3 chars]');
  });

  it('never splits a surrogate pair, and mends lone surrogates', () => {
    expect(untrusted('ab😀cd', 3)).toBe('ab…[+4 chars]');
    expect(untrusted('a\ud800b')).toBe('a\ufffdb');
    expect(untrusted('a\udc00')).toBe('a\ufffd');
  });

  it('replaces control characters, line breaks and bidi overrides', () => {
    expect(untrusted('bad\u001b[31mred\r\nfake line\u0000\u007f\u0085\u2028\u202e')).toBe(
      'bad\ufffd[31mred\ufffd\ufffdfake line\ufffd\ufffd\ufffd\ufffd\ufffd',
    );
    expect(untrusted('tab\there')).toBe('tab\ufffdhere');
  });

  // Issue 12, finding 8: zero-width and bidi marks passed the cleaner.
  it('replaces zero-width characters, bidi marks, embeddings, isolates and the BOM', () => {
    const marks = ['\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u061c', '\ufeff'];
    for (const m of marks) expect(untrusted(`a${m}b`), `U+${m.codePointAt(0)!.toString(16)}`).toBe('a\ufffdb');
    expect(untrusted('node\u001b\u202e-1\u200b')).toBe('node\ufffd\ufffd-1\ufffd');
  });

  it('describes non-strings by type without their content', () => {
    expect(untrusted(42)).toBe('[number 42]');
    expect(untrusted(true)).toBe('[boolean true]');
    expect(untrusted(10n)).toBe('[bigint 10]');
    expect(untrusted({ secret: 'x'.repeat(1000) })).toBe('[object]');
    expect(untrusted(['a', 'b', 'c'])).toBe('[list of 3]');
    expect(untrusted(() => 1)).toBe('[function]');
    expect(untrusted(Symbol('s'))).toBe('[symbol]');
  });
});
