import { describe, expect, it } from 'vitest';
import { checkRequestHead, checkResponseHead, type RequestHead } from '../../../src/mux/heads.js';

const GOOD: RequestHead = {
  kind: 'http',
  tunnel: 'ucws',
  method: 'POST',
  target: '/a%2Fb/c?x=1&y=%C3%A9#frag',
  headers: ['Host', 'relay.example', 'Content-Type', 'text/plain', 'X-Obs', 'caf\u00e9\ttab'],
  requestId: '0123abcd.req-1_x',
};

function problemOf(value: unknown, check: (v: unknown) => { ok: boolean } = checkRequestHead): string {
  const result = check(value) as { ok: false; problem: string } | { ok: true };
  expect(result.ok, JSON.stringify(value)?.slice(0, 200)).toBe(false);
  return (result as { problem: string }).problem;
}

describe('checkRequestHead', () => {
  it('accepts a well-formed head and returns exactly its fields', () => {
    const result = checkRequestHead({ ...GOOD, extra: 'dropped' });
    expect(result).toEqual({ ok: true, value: GOOD });
  });

  it('accepts every exchange kind', () => {
    for (const kind of ['http', 'upgrade', 'egress']) expect(checkRequestHead({ ...GOOD, kind }).ok).toBe(true);
  });

  it('keeps duplicate header pairs (Set-Cookie twice) in order, with their case', () => {
    const headers = ['Set-Cookie', 'a=1', 'x-One', '1', 'set-cookie', 'b=2', 'SET-COOKIE', 'a=1'];
    const result = checkRequestHead({ ...GOOD, headers });
    expect(result.ok && result.value.headers).toEqual(headers);
  });

  it('refuses what is not a JSON object', () => {
    for (const v of [null, undefined, 'head', 42, [GOOD]]) expect(problemOf(v)).toBe('the request head is not a JSON object');
  });

  it.each([['websocket'], [''], [1], [null], [undefined]])('refuses the exchange kind %j', (kind) => {
    expect(problemOf({ ...GOOD, kind })).toMatch(/^unknown exchange kind /);
  });

  it.each([['UCWS'], ['-ucws'], ['ucws-'], ['u_cws'], ['a'.repeat(64)], [''], [7]])('refuses the tunnel name %j', (tunnel) => {
    expect(problemOf({ ...GOOD, tunnel })).toBe('the tunnel name is not a valid tunnel name');
  });

  it.each([['GE T'], [''], ['GET\r\n'], ['G(ET'], ['M'.repeat(33)], [undefined]])('refuses the method %j', (method) => {
    expect(problemOf({ ...GOOD, method })).toBe('the method is not an HTTP token');
  });

  it('accepts a 32-character extension method', () => {
    expect(checkRequestHead({ ...GOOD, method: 'M'.repeat(32) }).ok).toBe(true);
  });

  it.each([
    ['a space', '/a b'],
    ['a tab', '/a\tb'],
    ['a control character', '/a\u0001b'],
    ['DEL', '/a\u007fb'],
    ['a line break', '/a\r\nHost: evil'],
    ['no leading slash', 'a/b'],
    ['absolute form', 'http://x/'],
    ['asterisk form', '*'],
    ['an empty target', ''],
    ['a character above 0xff', '/\u0100'],
    ['over 64 KiB', `/${'a'.repeat(64 * 1024)}`],
  ])('refuses a target with %s', (_what, target) => {
    expect(problemOf({ ...GOOD, target })).toBe('the request target is not a path starting with "/"');
  });

  it.each([[''], ['a b'], ['r/1'], ['r\n1'], ['x'.repeat(65)], [12], [undefined]])('refuses the request id %j', (requestId) => {
    expect(problemOf({ ...GOOD, requestId })).toBe('the request id is missing or malformed');
  });

  it.each([
    ['with a space', 'Bad Name'],
    ['with a colon', 'x:y'],
    ['empty', ''],
    ['with a line break', 'X-A\r\nX-B'],
    ['with a non-ASCII letter', 'X-Caf\u00e9'],
  ])('refuses a header name %s', (_what, name) => {
    expect(problemOf({ ...GOOD, headers: ['Host', 'h', name, 'v'] })).toBe('header 2 has an invalid name');
  });

  it('refuses a header name that is not a string', () => {
    expect(problemOf({ ...GOOD, headers: [1, 'v'] })).toBe('header 1 has an invalid name');
  });

  it.each([
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CR LF (header injection)', 'v\r\nX-Injected: 1'],
    ['NUL', 'a\u0000b'],
    ['another control character', 'a\u001fb'],
    ['DEL', 'a\u007f'],
    ['a character above 0xff', 'caf\u0113'],
    ['an emoji', '\u{1F600}'],
  ])('refuses a header value with %s', (_what, value) => {
    expect(problemOf({ ...GOOD, headers: ['X-Thing', value] })).toBe('header X-Thing has an invalid value');
  });

  it('refuses a header value that is not a string', () => {
    expect(problemOf({ ...GOOD, headers: ['Content-Length', 5] })).toBe('header Content-Length has an invalid value');
  });

  it('accepts empty values, tabs and obs-text up to 0xff', () => {
    expect(checkRequestHead({ ...GOOD, headers: ['X-Empty', '', 'X-Tab', 'a\tb', 'X-Latin1', '\u00ff\u0080'] }).ok).toBe(true);
  });

  it.each([
    ['an odd number of items', ['Host', 'h', 'X-Lonely']],
    ['an object', { Host: 'h' }],
    ['a string', 'Host: h'],
    ['missing', undefined],
    ['more than 10,000 pairs', Array.from({ length: 20_002 }, (_, i) => (i % 2 ? 'v' : 'X-H'))],
  ])('refuses headers that are %s', (_what, headers) => {
    expect(problemOf({ ...GOOD, headers })).toBe('headers is not a list of name/value pairs');
  });

  it('accepts 10,000 pairs', () => {
    const headers = Array.from({ length: 20_000 }, (_, i) => (i % 2 ? `v${i}` : 'X-H'));
    expect(checkRequestHead({ ...GOOD, headers }).ok).toBe(true);
  });
});

describe('checkResponseHead', () => {
  it('accepts a final status with raw headers, duplicate Set-Cookie pairs kept in order', () => {
    const headers = ['Set-Cookie', 'a=1; Path=/', 'Content-Type', 'text/html', 'set-cookie', 'b=2', 'Set-Cookie', 'a=1; Path=/'];
    expect(checkResponseHead({ status: 200, headers })).toEqual({ ok: true, value: { status: 200, headers } });
  });

  it('keeps a reason phrase only when one is given', () => {
    expect(checkResponseHead({ status: 404, statusText: 'Nicht gefunden', headers: [] })).toEqual({ ok: true, value: { status: 404, statusText: 'Nicht gefunden', headers: [] } });
    const plain = checkResponseHead({ status: 204, headers: [] });
    expect(plain.ok && 'statusText' in plain.value).toBe(false);
    expect(checkResponseHead({ status: 200, statusText: '', headers: [] })).toEqual({ ok: true, value: { status: 200, statusText: '', headers: [] } });
  });

  it('accepts 101 (an upgrade) and the ends of the final range', () => {
    for (const status of [101, 200, 599]) expect(checkResponseHead({ status, headers: [] }).ok, String(status)).toBe(true);
  });

  it.each([[100], [102], [103], [199], [600], [0], [-200], [200.5], ['200'], [null], [undefined], [Number.NaN]])('refuses the status %j', (status) => {
    expect(problemOf({ status, headers: [] }, checkResponseHead)).toMatch(/^the status .* is not a final HTTP status$/);
  });

  it('names the refused status', () => {
    expect(problemOf({ status: 102, headers: [] }, checkResponseHead)).toBe('the status 102 is not a final HTTP status');
    expect(problemOf({ status: '200', headers: [] }, checkResponseHead)).toBe('the status "200" is not a final HTTP status');
  });

  it('refuses a reason phrase that is too long, has a line break, or is not a string', () => {
    expect(checkResponseHead({ status: 200, statusText: 'x'.repeat(128), headers: [] }).ok).toBe(true);
    for (const statusText of ['x'.repeat(129), 'OK\r\nX-Injected: 1', 'O\u0000K', 200]) {
      expect(problemOf({ status: 200, statusText, headers: [] }, checkResponseHead)).toBe('the reason phrase is malformed');
    }
  });

  it('checks the header pairs as for requests', () => {
    expect(problemOf({ status: 200, headers: ['X-A'] }, checkResponseHead)).toBe('headers is not a list of name/value pairs');
    expect(problemOf({ status: 200, headers: ['X A', 'v'] }, checkResponseHead)).toBe('header 1 has an invalid name');
    expect(problemOf({ status: 200, headers: ['Location', '/x\r\nSet-Cookie: evil'] }, checkResponseHead)).toBe('header Location has an invalid value');
    expect(problemOf({ status: 200 }, checkResponseHead)).toBe('headers is not a list of name/value pairs');
  });

  it('refuses what is not a JSON object', () => {
    for (const v of [null, [], 'HTTP/1.1 200 OK', 200]) expect(problemOf(v, checkResponseHead)).toBe('the response head is not a JSON object');
  });
});
