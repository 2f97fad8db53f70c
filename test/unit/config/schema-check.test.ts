import { describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../src/errors.js';
import { Problems, Section, editDistance, suggestKey } from '../../../src/config/schema-check.js';
import { redactUrl } from '../../../src/config/values.js';
import { deepFreeze } from '../../../src/config/common.js';
import { parseDuration } from '../../../src/config/units.js';

describe('suggestKey', () => {
  const keys = ['target', 'hostHeader', 'tlsVerify', 'allowPaths', 'timeouts'];
  it.each([
    ['targt', 'target'],
    ['tagret', 'target'],
    ['Target', 'target'],
    ['host_header', 'hostHeader'],
    ['tls-verify', 'tlsVerify'],
    ['allowPath', 'allowPaths'],
    ['timeout', 'timeouts'],
  ])('%s → %s', (typo, key) => {
    expect(suggestKey(typo, keys)).toBe(key);
  });

  it('suggests nothing for unrelated keys', () => {
    expect(suggestKey('proxy', keys)).toBeUndefined();
    expect(suggestKey('x', keys)).toBeUndefined();
  });

  it('computes edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});

describe('Section', () => {
  it('collects problems and throws them together', () => {
    const problems = new Problems('x.yaml', '/');
    const root = new Section(problems, '', { a: '1s', b: 'bad', c: null, zz: 1 }, ['a', 'b', 'c']);
    expect(root.get('a', parseDuration, 0)).toBe(1000);
    expect(root.get('b', parseDuration, 5)).toBe(5);
    expect(root.get('c', parseDuration, 7)).toBe(7);
    expect(root.req('d', parseDuration, 'a duration')).toBeUndefined();
    const err = (() => {
      try {
        problems.throwIfAny();
      } catch (e) {
        return e as ConfigErrors;
      }
      throw new Error('no throw');
    })();
    expect(err).toBeInstanceOf(ConfigErrors);
    expect(err.code).toBe('CTB_CONFIG_INVALID');
    expect(err.message).toBe(
      [
        'x.yaml: zz: unknown key (known keys: a, b, c)',
        'x.yaml: b: expected a duration such as "30s", "500ms", "2m", got "bad"',
        'x.yaml: d: missing; expected a duration',
      ].join('\n'),
    );
  });

  it('lets programming errors through', () => {
    const root = new Section(new Problems('x.yaml', '/'), '', { a: 1 }, ['a']);
    expect(() =>
      root.get('a', () => {
        throw new RangeError('bug');
      }, 0),
    ).toThrow('bug');
  });
});

describe('redactUrl', () => {
  it.each([
    ['http://user:pass@proxy:3128', 'http://***@proxy:3128'],
    ['http://user:p@ss@proxy:3128', 'http://***@proxy:3128'],
    ['user:pass@proxy:3128', '***@proxy:3128'],
    ['wss://relay/?token=abc', 'wss://relay/?***'],
    ['http://h/#frag', 'http://h/#***'],
    ['http://h:80/path', 'http://h:80/path'],
  ])('%s → %s', (input, output) => {
    expect(redactUrl(input)).toBe(output);
  });
});

describe('deepFreeze', () => {
  it('freezes nested plain objects and arrays, and null-prototype maps', () => {
    const map = Object.create(null) as Record<string, { list: number[] }>;
    map.a = { list: [1] };
    const v = deepFreeze({ map, nested: { deep: [{ x: 1 }] } });
    expect(Object.isFrozen(v.map.a.list)).toBe(true);
    expect(Object.isFrozen(v.nested.deep[0])).toBe(true);
  });
});
