import { describe, expect, it } from 'vitest';
import { declaredLength, endToEnd, firstValue, getHeader, getHeaderList, hopByHopFields, withoutHeaders } from '../../../src/http/headers.js';

describe('getHeader / getHeaderList', () => {
  const pairs = ['Content-Type', 'text/plain', 'X-Multi', 'a', 'x-multi', 'b', 'X-MULTI', 'c', 'Empty', ''];

  it('finds a field whatever the case it was sent in, the first value when repeated', () => {
    expect(getHeader(pairs, 'content-type')).toBe('text/plain');
    expect(getHeader(pairs, 'x-multi')).toBe('a');
    expect(getHeader(['CONTENT-TYPE', 'x'], 'content-type')).toBe('x');
    expect(getHeader(['cOnTeNt-TyPe', 'y'], 'content-type')).toBe('y');
  });

  it('tells an empty value from an absent field', () => {
    expect(getHeader(pairs, 'empty')).toBe('');
    expect(getHeader(pairs, 'absent')).toBeUndefined();
    expect(getHeader([], 'content-type')).toBeUndefined();
  });

  it('never matches a value as a name', () => {
    expect(getHeader(['X-A', 'content-type', 'X-B', 'z'], 'content-type')).toBeUndefined();
  });

  it('joins every value of a list field in order', () => {
    expect(getHeaderList(pairs, 'x-multi')).toBe('a, b, c');
    expect(getHeaderList(pairs, 'absent')).toBeUndefined();
  });
});

describe('hop-by-hop fields', () => {
  it('are the fixed RFC 9110 list plus whatever Connection names, across several Connection fields and any case', () => {
    const pairs = ['Connection', 'Keep-Alive, X-Secret-Hop', 'connection', ' x-other ,,close', 'CONNECTION', 'X-Third'];
    const fields = hopByHopFields(pairs);
    for (const f of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings']) {
      expect(fields.has(f), f).toBe(true);
    }
    for (const f of ['x-secret-hop', 'x-other', 'close', 'x-third']) expect(fields.has(f), f).toBe(true);
    expect(fields.has('')).toBe(false);
    expect(fields.has('host')).toBe(false);
  });

  it('keep Connection and Upgrade out of the set for an upgrade', () => {
    const fields = hopByHopFields(['Connection', 'Upgrade'], true);
    expect(fields.has('connection')).toBe(false);
    expect(fields.has('upgrade')).toBe(false);
    expect(fields.has('keep-alive')).toBe(true);
  });
});

describe('endToEnd', () => {
  it('removes hop-by-hop fields and the fields Connection names (several Connection fields, mixed case), keeping the rest in order', () => {
    const pairs = [
      'Host', 'example',
      'Connection', 'X-Hop-One, keep-alive',
      'X-Keep', '1',
      'Keep-Alive', 'timeout=5',
      'x-hop-one', 'gone',
      'TE', 'trailers',
      'Transfer-Encoding', 'chunked',
      'connection', 'X-HOP-TWO',
      'X-Hop-Two', 'gone too',
      'Upgrade', 'websocket',
      'Proxy-Authorization', 'Basic c2VjcmV0',
      'Proxy-Connection', 'keep-alive',
      'Trailer', 'X-Sum',
      'HTTP2-Settings', 'AAMAAABkAAQAAP__',
      'Set-Cookie', 'a=1',
      'X-Keep', '2',
      'set-cookie', 'b=2',
    ];
    expect(endToEnd(pairs)).toEqual(['Host', 'example', 'X-Keep', '1', 'Set-Cookie', 'a=1', 'X-Keep', '2', 'set-cookie', 'b=2']);
  });

  it('also drops the names in alsoDrop (lower case), whatever case they were sent in', () => {
    expect(endToEnd(['X-Forwarded-For', '6.6.6.6', 'Expect', '100-continue', 'Accept', '*/*'], { alsoDrop: new Set(['x-forwarded-for', 'expect']) })).toEqual(['Accept', '*/*']);
  });

  it('with keepUpgrade keeps Upgrade and sends Connection: upgrade alone, last', () => {
    const pairs = ['Connection', 'keep-alive, Upgrade, X-Hop', 'Upgrade', 'websocket', 'X-Hop', 'h', 'Sec-WebSocket-Key', 'k', 'Keep-Alive', '5'];
    expect(endToEnd(pairs, { keepUpgrade: true })).toEqual(['Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k', 'Connection', 'upgrade']);
  });

  it('does not change its input', () => {
    const pairs = ['Connection', 'close', 'X-A', '1'];
    const copy = [...pairs];
    endToEnd(pairs, { keepUpgrade: true, alsoDrop: new Set(['x-a']) });
    expect(pairs).toEqual(copy);
  });

  it('withoutHeaders drops exactly the named fields', () => {
    expect(withoutHeaders(['A', '1', 'b', '2', 'C', '3'], new Set(['a', 'c']))).toEqual(['b', '2']);
  });
});

describe('declaredLength', () => {
  it.each([
    ['0', 0],
    ['1024', 1024],
    [' 12 ', 12],
    ['007', 7],
    ['999999999999999', 999_999_999_999_999],
  ])('reads %j as %d', (value, expected) => {
    expect(declaredLength(value)).toBe(expected);
  });

  it.each([['1e3'], [' -1'], ['-1'], ['12abc'], ['0x10'], ['1.5'], ['+5'], [''], ['1 2'], ['1,1'], ['1000000000000000'], ['Infinity']])('refuses %j', (value) => {
    expect(declaredLength(value)).toBeUndefined();
  });

  it('is undefined without the field', () => {
    expect(declaredLength(undefined)).toBeUndefined();
  });
});

describe('firstValue', () => {
  it('takes the first of a repeated Node header, or the one value', () => {
    expect(firstValue(['a', 'b'])).toBe('a');
    expect(firstValue('x')).toBe('x');
    expect(firstValue(undefined)).toBeUndefined();
    expect(firstValue([])).toBeUndefined();
  });
});
