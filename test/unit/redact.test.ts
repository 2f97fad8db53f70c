import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SECRET_PARAMS, configureRedaction, redactHeaders, redactUrl, shortHash } from '../../src/redact.js';

describe('redactUrl', () => {
  it.each([
    ['/uc/login?user=a&pass=b', '/uc/login?user=a&pass=[REDACTED]'],
    ['/api?token=', '/api?token=[REDACTED]'],
    ['/path?x=1&token=abc', '/path?x=1&token=[REDACTED]'],
    ['/ct/rpc?key=s3cr3t&login=bob', '/ct/rpc?key=[REDACTED]&login=bob'],
    ['/a?PASSWORD=x&Access_Token=y&Secret=z&KEY=k', '/a?PASSWORD=[REDACTED]&Access_Token=[REDACTED]&Secret=[REDACTED]&KEY=[REDACTED]'],
    ['/a?token=1&token=2&x=3', '/a?token=[REDACTED]&token=[REDACTED]&x=3'],
    ['/a?p%61ss=secret&x=1', '/a?p%61ss=[REDACTED]&x=1'],
    ['/a?token&x=1', '/a?token&x=1'],
    ['/a?monkey=1&tokens=2&keyword=3', '/a?monkey=1&tokens=2&keyword=3'],
    ['/a?token=a=b=c&&x', '/a?token=[REDACTED]&&x'],
    ['/a?%zz=1&pass=2', '/a?%zz=1&pass=[REDACTED]'],
    ['/a?token=abc#token=frag', '/a?token=[REDACTED]#token=frag'],
    ['https://ct.example.com:8443/rpc?key=abc&q=%C3%A9+x', 'https://ct.example.com:8443/rpc?key=[REDACTED]&q=%C3%A9+x'],
    ['http://user:hunter2@proxy.corp:3128/x?y=1', 'http://user:[REDACTED]@proxy.corp:3128/x?y=1'],
    ['/dossiers/été/日本?name=Zoë&pass=mot%20de%20passe', '/dossiers/été/日本?name=Zoë&pass=[REDACTED]'],
    ['/plain/path', '/plain/path'],
    ['/empty?', '/empty?'],
  ])('%s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('redactUrl: every built-in secret parameter name', () => {
  const names = ['key', 'pass', 'password', 'passwd', 'pwd', 'token', 'access_token', 'secret', 'api_key', 'apikey', 'sig', 'signature'];

  it('is the documented list', () => {
    expect([...SECRET_PARAMS].sort()).toEqual([...names].sort());
  });

  it.each(names)('%s, in any case and percent-encoded', (name) => {
    expect(redactUrl(`/a?x=1&${name}=v4lue&y=2`)).toBe(`/a?x=1&${name}=[REDACTED]&y=2`);
    const upper = name.toUpperCase();
    expect(redactUrl(`/a?${upper}=v4lue`)).toBe(`/a?${upper}=[REDACTED]`);
    const encoded = encodeURIComponent(name).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`);
    expect(redactUrl(`/a?${encoded}=v4lue`)).toBe(`/a?${encoded}=[REDACTED]`);
  });

  it('leaves look-alikes alone', () => {
    expect(redactUrl('/a?signed=1&sigma=2&apikeys=3&pwds=4')).toBe('/a?signed=1&sigma=2&apikeys=3&pwds=4');
  });
});

describe('configureRedaction (log.redact)', () => {
  afterEach(() => configureRedaction([]));

  it('adds names for query parameters and headers alike, case-insensitively, to every later call', () => {
    expect(redactUrl('/a?session=s1&SID=2')).toBe('/a?session=s1&SID=2');
    configureRedaction(['Session', 'x-api-key', 'sid']);
    expect(redactUrl('/a?session=s1&SID=2&Token=3&x=4')).toBe('/a?session=[REDACTED]&SID=[REDACTED]&Token=[REDACTED]&x=4');
    expect(redactUrl('/a?x%2Dapi%2Dkey=k')).toBe('/a?x%2Dapi%2Dkey=[REDACTED]');
    expect(redactHeaders({ 'X-API-Key': 'k', Session: ['a', 'b'], authorization: 'Bearer t', accept: '*/*' })).toEqual({
      'X-API-Key': '[REDACTED]',
      Session: ['[REDACTED]', '[REDACTED]'],
      authorization: '[REDACTED]',
      accept: '*/*',
    });
  });

  it('replaces the previous extra names (a reload), and [] restores the built-in list', () => {
    configureRedaction(['session']);
    configureRedaction(['sid']);
    expect(redactUrl('/a?session=1&sid=2')).toBe('/a?session=1&sid=[REDACTED]');
    configureRedaction([]);
    expect(redactUrl('/a?sid=2&pwd=3')).toBe('/a?sid=2&pwd=[REDACTED]');
    expect(redactHeaders({ sid: 'x' })).toEqual({ sid: 'x' });
  });
});

describe('redactHeaders', () => {
  it('replaces credential headers, case-insensitively, and copies the rest', () => {
    const headers = {
      Authorization: 'Bearer abc',
      'proxy-authorization': 'Basic xyz',
      cookie: 'sid=1',
      'set-cookie': ['a=1', 'b=2'],
      'X-UCToken': 'tok',
      'content-type': 'text/xml',
      'content-length': 12,
      accept: undefined,
    };
    const out = redactHeaders(headers);
    expect(out).toEqual({
      Authorization: '[REDACTED]',
      'proxy-authorization': '[REDACTED]',
      cookie: '[REDACTED]',
      'set-cookie': ['[REDACTED]', '[REDACTED]'],
      'X-UCToken': '[REDACTED]',
      'content-type': 'text/xml',
      'content-length': 12,
      accept: undefined,
    });
    expect(out).not.toBe(headers);
    expect(headers.Authorization).toBe('Bearer abc');
  });
});

describe('shortHash', () => {
  it('is the first 8 hex chars of sha256', () => {
    expect(shortHash('bob')).toBe(createHash('sha256').update('bob').digest('hex').slice(0, 8));
    expect(shortHash('bob')).toMatch(/^[0-9a-f]{8}$/);
    expect(shortHash('alice')).not.toBe(shortHash('bob'));
  });
});
