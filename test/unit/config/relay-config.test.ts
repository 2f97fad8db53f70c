import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors } from '../../../src/errors.js';
import { parseRelayConfig } from '../../../src/config/relay-config.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const FILE = join(FIXTURES, 'relay.yaml'); // relative paths resolve against FIXTURES
const SECRET = 'test-secret-0123456789abcdef-0123456789';
const NO_ENV = {};

function problems(obj: unknown, env: NodeJS.ProcessEnv = NO_ENV): string[] {
  try {
    parseRelayConfig(obj, 'relay.yaml', env, { baseDir: FIXTURES });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    const errors = (err as ConfigErrors).errors;
    for (const e of errors) {
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.code).toBe('CTB_CONFIG_INVALID');
      expect(e.file).toBe('relay.yaml');
    }
    return errors.map((e) => e.message);
  }
  throw new Error('expected ConfigErrors');
}

const minimal = (extra: Record<string, unknown> = {}) => ({ auth: { secret: SECRET }, ...extra });

describe('parseRelayConfig defaults', () => {
  it('fills every default from a minimal config', () => {
    const cfg = parseRelayConfig(minimal(), FILE, NO_ENV);
    expect(cfg).toMatchObject({
      file: FILE,
      listen: { host: '127.0.0.1', port: 8080 },
      publicUrl: 'http://127.0.0.1:8080',
      baseDomain: undefined,
      agentPath: '/_ctbridge/agent',
      tls: undefined,
      auth: {
        keys: [{ id: undefined, secret: SECRET, publicKey: undefined, privateKey: undefined, where: 'auth.secret' }],
        revoked: { agents: [], tokens: [] },
        audience: 'ctbridge',
        issuer: 'ctbridge',
      },
      limits: { maxRequestBody: 100 * 1024 * 1024, maxResponseBody: 0, maxHeaderSize: 16 * 1024, maxStreamsPerAgent: 1000 },
      timeouts: { request: 300_000, idle: 150_000, handshake: 10_000, shutdownGrace: 30_000 },
      heartbeat: { interval: 30_000, timeout: 60_000 },
      streamWindow: 256 * 1024,
      log: { level: 'info', redact: [] },
    });
    expect(cfg.trustedProxies.size).toBe(0);
    expect(Object.keys(cfg.tunnels)).toEqual([]);
  });

  it('derives publicUrl from listen (loopback for wildcard hosts, https with tls)', () => {
    expect(parseRelayConfig(minimal({ listen: '[::1]:9000' }), FILE, NO_ENV).publicUrl).toBe('http://[::1]:9000');
    expect(parseRelayConfig(minimal({ listen: '0.0.0.0:80' }), FILE, NO_ENV).publicUrl).toBe('http://127.0.0.1:80');
    const tls = { cert: 'tls/relay.crt', key: 'tls/relay.key' };
    expect(parseRelayConfig(minimal({ tls }), FILE, NO_ENV).publicUrl).toBe('https://127.0.0.1:8080');
  });

  it('gives tunnels http kind and inherits relay-wide limits and timeouts', () => {
    const cfg = parseRelayConfig(minimal({ tunnels: { ucws: null, other: {} }, timeouts: { idle: '1m' } }), FILE, NO_ENV);
    expect(cfg.tunnels.ucws).toEqual({
      name: 'ucws',
      kind: 'http',
      allowFrom: undefined,
      allowPaths: undefined,
      maxRequestBody: 100 * 1024 * 1024,
      timeouts: { request: 300_000, idle: 60_000 },
      clientTracker: undefined,
    });
    expect(cfg.tunnels.other.kind).toBe('http');
  });

  it('gives clienttracker tunnels their defaults', () => {
    const cfg = parseRelayConfig(
      minimal({ tunnels: { cioc: { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc/' } } } }),
      FILE,
      NO_ENV,
    );
    expect(cfg.tunnels.cioc.clientTracker).toEqual({
      rpcUrl: 'https://ct.example/rpc/',
      rewrite: ['resourceInfoURL', 'resourceTaxonomyInfoURL'],
      validation: 'report',
      errorStatus: 200,
    });
  });

  it('uses a null-prototype tunnel map', () => {
    const cfg = parseRelayConfig(minimal({ tunnels: { a: {} } }), FILE, NO_ENV);
    expect(cfg.tunnels.constructor).toBeUndefined();
    expect('toString' in cfg.tunnels).toBe(false);
  });
});

describe('parseRelayConfig full file', () => {
  it('resolves every key', () => {
    const cfg = parseRelayConfig(
      {
        listen: '[::1]:9443',
        publicUrl: 'https://relay.example.com/base/',
        baseDomain: 'Tunnels.Example.com',
        agentPath: '/agents',
        tls: { cert: 'tls/relay.crt', key: 'tls/relay.key' },
        auth: { publicKey: 'tls/token-verify.pub', privateKey: 'tls/token-signing.key', audience: 'a', issuer: 'i' },
        trustedProxies: ['10.0.0.0/8'],
        limits: { maxRequestBody: '10MiB', maxResponseBody: '1MB', maxHeaderSize: '32KiB', maxStreamsPerAgent: 50 },
        timeouts: { request: '2m', idle: '90s', handshake: '1.5s', shutdownGrace: '0s' },
        heartbeat: { interval: '5s', timeout: '20s' },
        streamWindow: '1MiB',
        log: { level: 'debug' },
        tunnels: {
          cioc: {
            kind: 'clienttracker',
            allowFrom: ['198.51.100.0/24'],
            allowPaths: ['/ct/ctregister.asp', '/ct/files/'],
            maxRequestBody: '1MiB',
            timeouts: { request: '30s' },
            clientTracker: { rpcUrl: 'https://ct.example/rpc/', rewrite: ['launchURL', 'launchURL'], validation: 'enforce', errorStatus: 502 },
          },
        },
      },
      FILE,
      NO_ENV,
    );
    expect(cfg.listen).toEqual({ host: '::1', port: 9443 });
    expect(cfg.publicUrl).toBe('https://relay.example.com/base');
    expect(cfg.baseDomain).toBe('tunnels.example.com');
    expect(cfg.tls?.cert.text).toBe(readFileSync(join(FIXTURES, 'tls/relay.crt'), 'utf8'));
    expect(cfg.tls?.key.file).toBe(join(FIXTURES, 'tls/relay.key'));
    expect(cfg.auth.keys).toHaveLength(1);
    expect(cfg.auth.keys[0].secret).toBeUndefined();
    expect(cfg.auth.keys[0].publicKey).toMatchObject({ format: 'spki', file: join(FIXTURES, 'tls/token-verify.pub') });
    expect(cfg.auth.keys[0].privateKey?.text).toContain('-----BEGIN PRIVATE KEY-----');
    expect(cfg.auth.keys[0]).toMatchObject({ id: undefined, where: 'auth.publicKey' });
    expect(cfg.trustedProxies.contains('10.9.9.9')).toBe(true);
    expect(cfg.limits).toEqual({ maxRequestBody: 10_485_760, maxResponseBody: 1_000_000, maxHeaderSize: 32_768, maxStreamsPerAgent: 50 });
    expect(cfg.timeouts).toEqual({ request: 120_000, idle: 90_000, handshake: 1500, shutdownGrace: 0, drainDelay: 0 });
    expect(cfg.streamWindow).toBe(1_048_576);
    const cioc = cfg.tunnels.cioc;
    expect(cioc.allowFrom?.contains('198.51.100.1')).toBe(true);
    expect(cioc.allowFrom?.contains('192.0.2.1')).toBe(false);
    expect(cioc.maxRequestBody).toBe(1_048_576);
    expect(cioc.timeouts).toEqual({ request: 30_000, idle: 90_000 });
    expect(cioc.clientTracker).toEqual({ rpcUrl: 'https://ct.example/rpc/', rewrite: ['launchURL'], validation: 'enforce', errorStatus: 502 });
  });

  it('accepts a JWKS public key and inline PEM', () => {
    const jwks = parseRelayConfig({ auth: { publicKey: 'tls/token-verify.jwks.json' } }, FILE, NO_ENV);
    expect(jwks.auth.keys[0].publicKey?.format).toBe('jwks');
    const pem = readFileSync(join(FIXTURES, 'tls/token-verify.pub'), 'utf8');
    const inline = parseRelayConfig({ auth: { publicKey: pem } }, FILE, NO_ENV);
    expect(inline.auth.keys[0].publicKey).toEqual({ file: '(inline)', text: pem, format: 'spki' });
  });
});

describe('parseRelayConfig env overrides', () => {
  it('CTBRIDGE_JWT_SECRET replaces auth.secret, or stands in for it', () => {
    const env = { CTBRIDGE_JWT_SECRET: 'from-the-environment-0123456789abcdef' };
    expect(parseRelayConfig(minimal(), FILE, env).auth.keys).toEqual([
      { id: undefined, secret: env.CTBRIDGE_JWT_SECRET, publicKey: undefined, privateKey: undefined, where: 'CTBRIDGE_JWT_SECRET' },
    ]);
    expect(parseRelayConfig({}, FILE, env).auth.keys[0].secret).toBe(env.CTBRIDGE_JWT_SECRET);
    expect(parseRelayConfig(minimal(), FILE, { CTBRIDGE_JWT_SECRET: '' }).auth.keys[0].where).toBe('auth.secret');
  });

  it('rejects a short env secret without echoing it', () => {
    const msgs = problems({}, { CTBRIDGE_JWT_SECRET: 'tiny-s3cr3t' });
    expect(msgs).toEqual([
      'relay.yaml: auth.secret: expected a string of at least 32 bytes in the CTBRIDGE_JWT_SECRET environment variable, got a shorter string; generate one with `openssl rand -base64 32`',
    ]);
  });

  it('refuses an env secret next to a public key', () => {
    expect(problems({ auth: { publicKey: 'tls/token-verify.pub' } }, { CTBRIDGE_JWT_SECRET: SECRET })).toEqual([
      'relay.yaml: auth.publicKey: cannot be combined with the CTBRIDGE_JWT_SECRET environment variable (a shared secret); unset one of them',
    ]);
  });
});

describe('parseRelayConfig errors', () => {
  it('reports every problem at once with file, key path and expectation', () => {
    const msgs = problems({
      listen: 8080,
      lmits: {},
      auth: { secret: 'short-s3cret' },
      timeouts: { request: 30, idle: '0s' },
      streamWindow: '1KiB',
      log: { level: 'verbose' },
      tunnels: {
        cioc: { kind: 'clienttraker' },
        Bad_Name: {},
        ok: { allowFrom: ['10.0.0.0/8', '300.1.1.1'], allowPaths: ['/a/', 'b', '/../x'], timeouts: { idle: '1y' } },
      },
    });
    expect(msgs).toEqual([
      'relay.yaml: lmits: unknown key (did you mean "limits"?)',
      'relay.yaml: listen: expected host:port such as "127.0.0.1:8080" or "[::1]:8080", got 8080',
      'relay.yaml: timeouts.request: expected a duration such as "30s", "500ms", "2m", got 30',
      'relay.yaml: timeouts.idle: expected a duration such as "30s", "500ms", "2m" of at least 1ms, got "0s"',
      'relay.yaml: auth.secret: expected a string of at least 32 bytes, got a shorter string; generate one with `openssl rand -base64 32`',
      'relay.yaml: streamWindow: expected a size such as "256KiB", "1MB", "100MiB" or a number of bytes of at least 16KiB, got "1KiB"',
      'relay.yaml: log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "verbose"',
      'relay.yaml: tunnels.cioc.kind: expected one of "http", "clienttracker", got "clienttraker"',
      'relay.yaml: tunnels.Bad_Name: expected a tunnel name of lowercase letters, digits and "-" (a DNS label: 1-63 characters, no "-" at either end), got "Bad_Name"',
      'relay.yaml: tunnels.ok.allowFrom[1]: expected a CIDR such as "198.51.100.0/24", "2001:db8::/32" or an IP address, got "300.1.1.1"',
      'relay.yaml: tunnels.ok.allowPaths[1]: expected a path starting with "/" (exact, or a prefix ending in "/"), got "b"',
      'relay.yaml: tunnels.ok.allowPaths[2]: expected a path starting with "/" (exact, or a prefix ending in "/") without "." or ".." segments, got "/../x"',
      'relay.yaml: tunnels.ok.timeouts.idle: expected a duration such as "30s", "500ms", "2m", got "1y"',
    ]);
  });

  it('never echoes auth.secret', () => {
    const secret = 'hunter2-password';
    for (const auth of [{ secret: secret.slice(0, 10) }, { secret, publicKey: 'tls/token-verify.pub' }, { secret, extra: secret }]) {
      const msgs = problems({ auth }).join('\n');
      expect(msgs).not.toContain(secret.slice(0, 10));
    }
    expect(problems({ auth: { secret: 1234567890 } })).toEqual([
      'relay.yaml: auth.secret: expected a string of at least 32 bytes, got a number',
    ]);
  });

  it('requires exactly one of secret and publicKey', () => {
    expect(problems({})).toEqual([
      'relay.yaml: auth: missing; expected auth.keys, auth.secret (or the CTBRIDGE_JWT_SECRET environment variable) or auth.publicKey',
    ]);
    expect(problems({ auth: { secret: SECRET, publicKey: 'tls/token-verify.pub' } })).toEqual([
      'relay.yaml: auth: expected exactly one of secret, publicKey, got both',
    ]);
  });

  it('checks key files', () => {
    expect(problems({ auth: { publicKey: 'tls/rsa.pub' } })).toEqual([
      `relay.yaml: auth.publicKey: expected an Ed25519 or P-256 public key (for EdDSA or ES256), got a rsa key in ${join(FIXTURES, 'tls/rsa.pub')}`,
    ]);
    expect(problems({ auth: { publicKey: 'missing.pub' } })).toEqual([
      `relay.yaml: auth.publicKey: cannot read ${join(FIXTURES, 'missing.pub')} (ENOENT: no such file or directory)`,
    ]);
    expect(problems({ auth: { publicKey: 'tls/relay.crt' } })[0]).toMatch(/auth.publicKey: expected an Ed25519 or P-256 public key or a JWKS/);
    expect(problems({ auth: { secret: SECRET, privateKey: 'tls/token-signing.key' } })).toEqual([
      'relay.yaml: auth.privateKey: only used together with auth.publicKey (to sign tokens it verifies)',
    ]);
    expect(problems({ auth: { publicKey: 'tls/token-verify.pub', privateKey: 'tls/token-other.key' } })[0]).toMatch(
      /auth.privateKey: expected the private key of auth.publicKey, got a key from another pair/,
    );
    expect(() => parseRelayConfig({ auth: { publicKey: 'tls/token-verify.jwks.json', privateKey: 'tls/token-signing.key' } }, FILE, NO_ENV)).not.toThrow();
  });

  it('checks tls files, and that the key matches the certificate', () => {
    expect(problems(minimal({ tls: { cert: 'tls/relay.crt' } }))).toEqual(['relay.yaml: tls.key: missing; expected a PEM private key file']);
    expect(problems(minimal({ tls: { cert: 'tls/relay.key', key: 'tls/relay.crt' } }))).toEqual([
      `relay.yaml: tls.cert: expected a certificate (a PEM file with "-----BEGIN CERTIFICATE-----"), got ${join(FIXTURES, 'tls/relay.key')}`,
      `relay.yaml: tls.key: expected an unencrypted PEM private key, got ${join(FIXTURES, 'tls/relay.crt')}`,
    ]);
    expect(problems(minimal({ tls: { cert: 'tls/relay.crt', key: 'tls/other.key' } }))[0]).toMatch(
      /^relay.yaml: tls.key: expected the private key of tls.cert, got a key that does not match it/,
    );
  });

  it('checks URLs, names and paths', () => {
    expect(
      problems(
        minimal({
          publicUrl: 'http://h/?q=1',
          baseDomain: '*.example.com',
          agentPath: 'agent',
          trustedProxies: '10.0.0.0/8',
          tunnels: {
            a: { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc', rewrite: ['homeURL'], validation: 'strict', errorStatus: 700 } },
            b: { kind: 'clienttracker' },
            c: { clientTracker: { rpcUrl: 'https://ct.example/rpc/' } },
          },
        }),
      ),
    ).toEqual([
      'relay.yaml: publicUrl: expected an http:// or https:// URL without a query or fragment, got "http://h/?***"',
      'relay.yaml: baseDomain: expected a DNS name such as "tunnels.example.com", got "*.example.com"',
      'relay.yaml: agentPath: expected a path starting with "/" such as "/_ctbridge/agent", got "agent"',
      'relay.yaml: trustedProxies: expected a list such as ["10.0.0.0/8", "2001:db8::/32"], got "10.0.0.0/8"',
      'relay.yaml: tunnels.a.clientTracker.rewrite[0]: expected one of "launchURL", "resourceInfoURL", "resourceSummaryURL", "resourceEmailURL", "resourceTaxonomyInfoURL", got "homeURL"',
      'relay.yaml: tunnels.a.clientTracker.rpcUrl: expected an http:// or https:// URL ending with "/", got "https://ct.example/rpc"',
      'relay.yaml: tunnels.a.clientTracker.validation: expected one of "off", "report", "enforce", got "strict"',
      'relay.yaml: tunnels.a.clientTracker.errorStatus: expected an integer from 100 to 599, got 700',
      'relay.yaml: tunnels.b.clientTracker.rpcUrl: missing; expected an http:// or https:// URL ending with "/"',
      'relay.yaml: tunnels.c.clientTracker: only allowed when kind is "clienttracker"',
    ]);
  });

  it('checks sections are mappings and heartbeat timing', () => {
    expect(problems([])).toEqual(['relay.yaml: expected a mapping, got a list']);
    expect(problems(minimal({ limits: 5, tunnels: ['a'], heartbeat: { interval: '60s' } }))).toEqual([
      'relay.yaml: limits: expected a mapping, got a number',
      'relay.yaml: heartbeat.timeout: expected a duration longer than heartbeat.interval (1m), got 1m',
      'relay.yaml: tunnels: expected a mapping, got a list',
    ]);
  });
});

describe('parseRelayConfig timer bounds', () => {
  it('keeps durations within what setTimeout can wait', () => {
    expect(problems(minimal({ timeouts: { request: '30d' } }))).toEqual([
      'relay.yaml: timeouts.request: expected a duration such as "30s", "500ms", "2m" of at most 24d, got "30d"',
    ]);
    expect(parseRelayConfig(minimal({ timeouts: { request: '24d' } }), FILE, NO_ENV).timeouts.request).toBe(24 * 86_400_000);
  });
});

describe('log.redact', () => {
  it('takes extra names to redact, as in agent.yaml', () => {
    expect(parseRelayConfig(minimal({ log: { level: 'warn', redact: ['Session'] } }), FILE, NO_ENV).log).toEqual({ level: 'warn', redact: ['session'] });
    expect(problems(minimal({ log: { redact: ['a/b'] } }))).toEqual([
      "relay.yaml: log.redact[0]: expected a query parameter or header name such as \"x-api-key\" (letters, digits and !#$%&'*+.^_`|~-), got \"a/b\"",
    ]);
  });
});
