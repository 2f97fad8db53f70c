import { describe, expect, it } from 'vitest';
import {
  CidrList,
  ValueError,
  formatDuration,
  formatHostPort,
  formatSize,
  parseCidr,
  parseDuration,
  parseHostPort,
  parseSize,
} from '../../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['365d', 365 * 86_400_000],
    ['0s', 0],
    [' 10 s ', 10_000],
    ['1.0004s', 1000],
  ])('%j → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([30, '30', '30x', '-1s', '1S', '1h30m', '', 'ms', null, undefined, true, '1e3s'])('rejects %j', (value) => {
    expect(() => parseDuration(value)).toThrow(ValueError);
  });

  it('says what it expected and echoes what it got', () => {
    expect(() => parseDuration(30)).toThrow('expected a duration such as "30s", "500ms", "2m", got 30');
    expect(() => parseDuration('soon')).toThrow('expected a duration such as "30s", "500ms", "2m", got "soon"');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [1500, '1.5s'],
    [30_000, '30s'],
    [90_000, '90s'],
    [120_000, '2m'],
    [3_600_000, '1h'],
    [365 * 86_400_000, '365d'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1001, 61_500, 86_399_999, 172_800_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});

describe('parseSize', () => {
  it.each([
    [0, 0],
    [1024, 1024],
    ['1024', 1024],
    ['10B', 10],
    ['1KB', 1000],
    ['1MB', 1_000_000],
    ['2GB', 2_000_000_000],
    ['256KiB', 262_144],
    ['100MiB', 104_857_600],
    ['1GiB', 1_073_741_824],
    ['1.5MiB', 1_572_864],
    ['16kib', 16_384],
  ])('%j → %d bytes', (value, bytes) => {
    expect(parseSize(value)).toBe(bytes);
  });

  it.each([-1, 1.5, '1.5', '-1KiB', 'KiB', '1TB', '1 MiBs', '', null, {}, Number.MAX_VALUE])('rejects %j', (value) => {
    expect(() => parseSize(value)).toThrow(ValueError);
  });

  it('formats exact binary units', () => {
    expect(formatSize(262_144)).toBe('256KiB');
    expect(formatSize(104_857_600)).toBe('100MiB');
    expect(formatSize(1_000_000)).toBe('1000000B');
    expect(parseSize(formatSize(1_073_741_824))).toBe(1_073_741_824);
  });
});

describe('parseHostPort', () => {
  it('reads IPv4, names and bracketed IPv6', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseHostPort('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseHostPort('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(formatHostPort({ host: '::1', port: 8080 })).toBe('[::1]:8080');
    expect(formatHostPort({ host: 'a.example', port: 1 })).toBe('a.example:1');
  });

  it.each(['8080', 8080, ':8080', '::1:8080', '[::1]', 'h:65536', 'h:-1', 'a b:80', '[1.2.3.4]:80', 'h:'])('rejects %j', (v) => {
    expect(() => parseHostPort(v)).toThrow('expected host:port such as "127.0.0.1:8080" or "[::1]:8080"');
  });

  it('optionally accepts a bare host', () => {
    expect(parseHostPort('intranet.corp', { portOptional: true })).toEqual({ host: 'intranet.corp', port: undefined });
    expect(parseHostPort('[::1]', { portOptional: true })).toEqual({ host: '::1', port: undefined });
  });
});

describe('parseCidr', () => {
  it('reads ranges and bare addresses', () => {
    expect(parseCidr('198.51.100.0/24')).toEqual({ address: '198.51.100.0', prefix: 24, family: 'ipv4', text: '198.51.100.0/24' });
    expect(parseCidr('::1/128')).toMatchObject({ family: 'ipv6', prefix: 128 });
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefix: 32, text: '10.1.2.3/32' });
    expect(parseCidr('2001:DB8::1')).toMatchObject({ prefix: 128, text: '2001:db8::1/128' });
  });

  it.each(['10.0.0.0/33', '::/129', '10.0.0/8', 'example.com/8', '10.0.0.0/', '10.0.0.0/8/8', '', 42, '[::1]/128'])(
    'rejects %j',
    (v) => {
      expect(() => parseCidr(v)).toThrow(/^expected a CIDR such as "198.51.100.0\/24"/);
    },
  );
});

describe('CidrList.contains', () => {
  const list = new CidrList(['198.51.100.0/24', '10.1.2.3', '2001:db8::/32', '::ffff:203.0.113.0/120']);

  it('matches IPv4', () => {
    expect(list.contains('198.51.100.7')).toBe(true);
    expect(list.contains('10.1.2.3')).toBe(true);
    expect(list.contains('10.1.2.4')).toBe(false);
    expect(list.contains('198.51.101.1')).toBe(false);
  });

  it('matches IPv6, with brackets or a zone', () => {
    expect(list.contains('2001:db8:1::5')).toBe(true);
    expect(list.contains('[2001:db8::5]')).toBe(true);
    expect(list.contains('2001:db8::5%eth0')).toBe(true);
    expect(list.contains('2001:db9::1')).toBe(false);
    expect(list.contains('::1')).toBe(false);
  });

  it('matches IPv4-mapped IPv6 addresses against IPv4 ranges, and IPv4 against mapped ranges', () => {
    expect(list.contains('::ffff:198.51.100.9')).toBe(true);
    expect(list.contains('::ffff:c633:6409')).toBe(true); // 198.51.100.9 in hex form
    expect(list.contains('::ffff:198.51.99.9')).toBe(false);
    expect(list.contains('203.0.113.77')).toBe(true);
  });

  it('is false for junk and for an empty list', () => {
    expect(list.contains('not-an-ip')).toBe(false);
    expect(list.contains('')).toBe(false);
    expect(new CidrList([]).contains('127.0.0.1')).toBe(false);
  });

  it('is frozen and serialises as its ranges', () => {
    expect(Object.isFrozen(list)).toBe(true);
    expect(Object.isFrozen(list.entries)).toBe(true);
    expect(JSON.stringify(new CidrList(['10.0.0.0/8', '::1']))).toBe('["10.0.0.0/8","::1/128"]');
    expect(list.size).toBe(4);
  });
});
