import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../src/errors.js';
import { parseAgentConfig } from '../../../src/config/agent-config.js';
import { describeAgentConfig } from '../../../src/config/describe.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';
const NO_ENV = {};

function problems(obj: unknown, env: NodeJS.ProcessEnv = NO_ENV): string[] {
  try {
    parseAgentConfig(obj, 'agent.yaml', env, { baseDir: FIXTURES });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    return (err as ConfigErrors).errors.map((e) => e.message);
  }
  throw new Error('expected ConfigErrors');
}

const parse = (obj: unknown, env: NodeJS.ProcessEnv = NO_ENV) => parseAgentConfig(obj, 'agent.yaml', env, { baseDir: FIXTURES });
const minimal = (extra: Record<string, unknown> = {}) => ({
  relay: 'ws://127.0.0.1:8080',
  token: TOKEN,
  tunnels: { ucws: { target: 'http://127.0.0.1:7224' } },
  ...extra,
});

describe('parseAgentConfig defaults', () => {
  it('fills every default from a minimal config', () => {
    const cfg = parse(minimal());
    expect(cfg).toEqual({
      file: 'agent.yaml',
      relay: 'ws://127.0.0.1:8080/_ctbridge/agent',
      relays: ['ws://127.0.0.1:8080/_ctbridge/agent'],
      token: TOKEN,
      tokenSource: 'config',
      // admin.listen not set: 9091, or the first free of 9092-9099 when 9091 is taken.
      admin: { listen: { host: '127.0.0.1', port: 9091 }, fallbackPorts: [9092, 9093, 9094, 9095, 9096, 9097, 9098, 9099], allowFrom: expect.anything(), hosts: [] },
      ca: undefined,
      proxy: { mode: 'env' },
      proxyAuth: undefined,
      trust: ['bundled', 'system'],
      tunnels: {
        ucws: {
          name: 'ucws',
          target: 'http://127.0.0.1:7224',
          hostHeader: { mode: 'target' },
          ca: undefined,
          tlsVerify: true,
          allowPaths: undefined,
          timeouts: { connect: 10_000, idle: 150_000, request: 300_000 },
        },
      },
      egress: undefined,
      reconnect: { initialDelay: 500, maxDelay: 10_000 },
      heartbeat: { interval: 30_000, timeout: 60_000 },
      limits: { maxStreams: 1000, maxHeaderSize: 16_384 },
      timeouts: { connect: 10_000, idle: 150_000, request: 300_000, shutdownGrace: 30_000 },
      streamWindow: 262_144,
      log: { level: 'info', redact: [] },
      inspect: { enabled: true, entries: 100, maxBytes: 4 * 1024 ** 2, bodies: 0 },
    });
  });

  it('keeps a relay path, tunnels inherit top-level timeouts, egress defaults to loopback', () => {
    const cfg = parse(minimal({ relay: 'wss://relay.example.com/custom', timeouts: { connect: '2s' }, egress: { listen: '127.0.0.1:8181' } }));
    expect(cfg.relay).toBe('wss://relay.example.com/custom');
    expect(cfg.tunnels.ucws.timeouts.connect).toBe(2000);
    expect(cfg.egress?.listen).toEqual({ host: '127.0.0.1', port: 8181 });
    expect(cfg.egress?.maxBody).toBe(1_048_576);
    expect(cfg.egress?.allowFrom.contains('127.0.0.1')).toBe(true);
    expect(cfg.egress?.allowFrom.contains('::1')).toBe(true);
    expect(cfg.egress?.allowFrom.contains('10.0.0.1')).toBe(false);
  });
});

describe('parseAgentConfig full config', () => {
  it('resolves every key', () => {
    const cfg = parse({
      relay: 'wss://relay.example.com',
      token: ` ${TOKEN}\n`,
      ca: 'tls/relay.crt',
      proxy: 'http://proxyuser:proxypass@proxy.corp:3128',
      tunnels: {
        app: {
          target: 'https://intranet.corp/app/',
          hostHeader: 'intranet.corp:443',
          ca: 'tls/relay.crt',
          tlsVerify: false,
          allowPaths: ['/ct/ctregister.asp', '/api/'],
          timeouts: { connect: '2s', idle: '20s', request: '40s' },
        },
        keep: { target: 'http://[::1]:8000', hostHeader: 'preserve' },
      },
      egress: { listen: '[::1]:8181', allowFrom: ['10.1.0.0/16'], maxBody: '64KiB' },
      reconnect: { initialDelay: '250ms', maxDelay: '1m' },
      heartbeat: { interval: '15s', timeout: '45s' },
      limits: { maxStreams: 10, maxHeaderSize: '8KiB' },
      timeouts: { connect: '3s', idle: '60s', request: '120s', shutdownGrace: '5s' },
      streamWindow: '64KiB',
      log: { level: 'warn' },
    });
    expect(cfg.relay).toBe('wss://relay.example.com/_ctbridge/agent');
    expect(cfg.token).toBe(TOKEN);
    expect(cfg.ca).toEqual({ file: join(FIXTURES, 'tls/relay.crt'), text: readFileSync(join(FIXTURES, 'tls/relay.crt'), 'utf8') });
    expect(cfg.proxy).toEqual({ mode: 'url', url: 'http://proxyuser:proxypass@proxy.corp:3128/' });
    expect(cfg.tunnels.app).toMatchObject({
      target: 'https://intranet.corp/app',
      hostHeader: { mode: 'literal', host: 'intranet.corp:443' },
      tlsVerify: false,
      allowPaths: ['/ct/ctregister.asp', '/api/'],
      timeouts: { connect: 2000, idle: 20_000, request: 40_000 },
    });
    expect(cfg.tunnels.app.ca?.text).toContain('-----BEGIN CERTIFICATE-----');
    expect(cfg.tunnels.keep).toMatchObject({ target: 'http://[::1]:8000', hostHeader: { mode: 'preserve' } });
    expect(cfg.egress).toMatchObject({ listen: { host: '::1', port: 8181 }, maxBody: 65_536 });
    expect(cfg.egress?.allowFrom.contains('10.1.200.3')).toBe(true);
    expect(cfg.egress?.allowFrom.contains('127.0.0.1')).toBe(false);
    expect(cfg.reconnect).toEqual({ initialDelay: 250, maxDelay: 60_000 });
    expect(cfg.limits).toEqual({ maxStreams: 10, maxHeaderSize: 8192 });
    expect(cfg.timeouts).toEqual({ connect: 3000, idle: 60_000, request: 120_000, shutdownGrace: 5000 });
    expect(cfg.streamWindow).toBe(65_536);
    expect(cfg.log.level).toBe('warn');
  });

  it('accepts proxy: none', () => {
    expect(parse(minimal({ proxy: 'none' })).proxy).toEqual({ mode: 'none' });
  });
});

describe('parseAgentConfig env overrides', () => {
  it('CTBRIDGE_AGENT_TOKEN replaces token, or stands in for it', () => {
    const env = { CTBRIDGE_AGENT_TOKEN: 'aaa.bbb.ccc\n' };
    expect(parse(minimal(), env)).toMatchObject({ token: 'aaa.bbb.ccc', tokenSource: 'env' });
    const { token: _, ...withoutToken } = minimal();
    expect(parse(withoutToken, env).token).toBe('aaa.bbb.ccc');
  });

  it('says both ways to give a token when there is none', () => {
    const { token: _, ...withoutToken } = minimal();
    expect(problems(withoutToken)).toEqual([
      'agent.yaml: token: missing; set token or tokenFile in agent.yaml, or the CTBRIDGE_AGENT_TOKEN environment variable',
    ]);
  });

  it('never echoes a malformed token', () => {
    const bad = 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig';
    expect(problems(minimal({ token: bad }))).toEqual([
      'agent.yaml: token: expected a token (a JWT: three base64url parts joined by "."), got something else',
    ]);
    expect(problems(minimal(), { CTBRIDGE_AGENT_TOKEN: bad })).toEqual([
      'agent.yaml: token: expected a token (a JWT: three base64url parts joined by ".") in the CTBRIDGE_AGENT_TOKEN environment variable, got something else',
    ]);
  });
});

describe('parseAgentConfig errors', () => {
  it('reports every problem at once with file, key path and expectation', () => {
    const msgs = problems({
      relay: 'https://relay.example.com',
      token: TOKEN,
      tunnels: {
        ucws: { targt: 'http://x', target: 'ftp://x', hostHeader: 'not a host', tlsVerify: 'no' },
        app: { target: 'http://h/app?x=1' },
        plain: { target: 'http://h', ca: 'tls/relay.crt', timeouts: { connect: 10 } },
        empty: null,
      },
      egress: { allowFrom: ['localhost'] },
      reconnect: { initialDelay: '20s' },
      limits: { maxStreams: 0 },
    });
    expect(msgs).toEqual([
      'agent.yaml: relay: expected a ws:// or wss:// URL (ws:// for http://, wss:// for https://), got "https://relay.example.com"',
      'agent.yaml: tunnels.ucws.targt: unknown key (did you mean "target"?)',
      'agent.yaml: tunnels.ucws.target: expected an http:// or https:// URL, got "ftp://x"',
      'agent.yaml: tunnels.ucws.hostHeader: expected "target", "preserve" or a host[:port] such as "intranet.example:8080", got "not a host"',
      'agent.yaml: tunnels.ucws.tlsVerify: expected true or false, got "no"',
      'agent.yaml: tunnels.app.target: expected an http:// or https:// URL without a query or fragment, got "http://h/app?***"',
      'agent.yaml: tunnels.plain.ca: only used with an https:// target',
      'agent.yaml: tunnels.plain.timeouts.connect: expected a duration such as "30s", "500ms", "2m", got 10',
      'agent.yaml: tunnels.empty.target: missing; expected an http:// or https:// URL such as "http://127.0.0.1:7224"',
      'agent.yaml: egress.listen: missing; expected host:port such as "127.0.0.1:8181"',
      'agent.yaml: egress.allowFrom[0]: expected a CIDR such as "198.51.100.0/24", "2001:db8::/32" or an IP address, got "localhost"',
      'agent.yaml: reconnect.maxDelay: expected a duration of at least reconnect.initialDelay (20s), got 10s',
      'agent.yaml: limits.maxStreams: expected an integer from 1 to 100000, got 0',
    ]);
  });

  it('requires relay and at least one tunnel', () => {
    expect(problems({ token: TOKEN })).toEqual([
      'agent.yaml: relay: missing; expected a ws:// or wss:// URL such as "wss://relay.example.com", or a list of them',
      'agent.yaml: tunnels: missing; expected at least one tunnel, such as "ucws: { target: http://127.0.0.1:7224 }"',
    ]);
    expect(problems(minimal({ tunnels: {} }))).toHaveLength(1);
  });

  it('never echoes proxy credentials or relay query tokens', () => {
    const msgs = problems(
      minimal({ proxy: 'socks5://proxyuser:s3cr3t-pass@proxy.corp:1080', relay: 'wss://relay.example.com/?token=abc.def.ghi' }),
    ).join('\n');
    expect(msgs).toContain('proxy: expected "none", "auto", "system", pac+<url of a PAC file> or an http:// or https:// URL, got "socks5://***@proxy.corp:1080"');
    expect(msgs).toContain('relay: expected a ws:// or wss:// URL without a query or fragment, got "wss://relay.example.com/?***"');
    expect(msgs).not.toMatch(/proxyuser|s3cr3t|abc\.def/);
    expect(problems(minimal({ proxy: 'http://u:p/w@proxy.corp' })).join('\n')).not.toMatch(/u:p|p\/w/);
    // A bad %-escape in the user or password: refused at load (it used to throw "URI malformed" when dialling), without echoing it.
    const badEscape = problems(minimal({ proxy: 'http://corp:pa%zzss@proxy.corp:3128' })).join('\n');
    expect(badEscape).toContain('proxy: expected a proxy URL whose user and password are percent-encoded');
    expect(badEscape).not.toMatch(/pa%zzss|corp:pa/);
    expect(problems(minimal({ relay: 'ws://user:pw@relay' }))).toEqual([
      'agent.yaml: relay: expected a ws:// or wss:// URL without user:password, got "ws://***@relay"',
    ]);
  });
});

describe('proxyAuth and trust', () => {
  it('takes NTLM credentials with DOMAIN\\user, the password from a file or CTBRIDGE_PROXY_PASSWORD, never echoed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-proxyauth-'));
    writeFileSync(join(dir, 'pw'), 'S3cret-file\n');
    const cfg = parseAgentConfig(minimal({ proxyAuth: { scheme: 'ntlm', username: 'CORP\\svc', passwordFile: join(dir, 'pw') } }), 'agent.yaml', {});
    expect(cfg.proxyAuth).toEqual({ scheme: 'ntlm', username: 'svc', domain: 'CORP', password: 'S3cret-file', passwordSource: 'file' });
    const env = parseAgentConfig(minimal({ proxyAuth: { scheme: 'basic', username: 'u' } }), 'agent.yaml', { CTBRIDGE_PROXY_PASSWORD: 'S3cret-env' });
    expect(env.proxyAuth).toMatchObject({ password: 'S3cret-env', passwordSource: 'env' });
    expect(problems(minimal({ proxyAuth: { scheme: 'kerberos', username: 'u' } }))).toEqual([
      'agent.yaml: proxyAuth.scheme: expected one of "basic", "ntlm", got "kerberos"',
      'agent.yaml: proxyAuth.passwordFile: missing; set passwordFile (a file holding the proxy password) or the CTBRIDGE_PROXY_PASSWORD environment variable',
    ]);
    expect(problems(minimal({ proxyAuth: { scheme: 'basic', username: 'u', domain: 'D', passwordFile: join(dir, 'pw') } })).join('\n')).toContain('only used with scheme: ntlm');
    expect(JSON.stringify(describeAgentConfig(cfg))).not.toContain('S3cret');
  });

  it('trust: bundled and/or system, not empty', () => {
    expect(parseAgentConfig(minimal({ trust: ['system'] }), 'agent.yaml', {}).trust).toEqual(['system']);
    expect(problems(minimal({ trust: [] })).join('\n')).toContain('expected at least one of "bundled", "system"');
    expect(problems(minimal({ trust: ['windows'] })).join('\n')).toContain('trust[0]: expected one of "bundled", "system"');
  });
});

describe('relay as a list', () => {
  it('accepts one URL per relay instance and keeps the first as relay', () => {
    const cfg = parseAgentConfig(
      { relay: ['wss://r1.example', 'wss://r2.example/agents', 'wss://r1.example'], token: 'aaa.bbb.ccc', tunnels: { t: { target: 'http://127.0.0.1:1' } } },
      'agent.yaml',
      {},
    );
    expect(cfg.relays).toEqual(['wss://r1.example/_ctbridge/agent', 'wss://r2.example/agents']);
    expect(cfg.relay).toBe('wss://r1.example/_ctbridge/agent');
  });

  it('names the bad item of the list', () => {
    expect(() =>
      parseAgentConfig({ relay: ['wss://ok.example', 'http://bad.example'], token: 'aaa.bbb.ccc', tunnels: { t: { target: 'http://127.0.0.1:1' } } }, 'agent.yaml', {}),
    ).toThrow(/agent\.yaml: relay: item 2: expected a ws:\/\/ or wss:\/\/ URL/);
  });
});

describe('log.redact', () => {
  it('takes extra names to redact, lower-cased and deduplicated', () => {
    expect(parseAgentConfig(minimal({ log: { redact: ['X-Api-Key', 'session', 'x-api-key'] } }), 'agent.yaml', NO_ENV).log).toEqual({
      level: 'info',
      redact: ['x-api-key', 'session'],
    });
  });

  it('refuses names that are not header or parameter names', () => {
    expect(problems(minimal({ log: { redact: ['ok', 'two words', ''] } }))).toEqual([
      "agent.yaml: log.redact[1]: expected a query parameter or header name such as \"x-api-key\" (letters, digits and !#$%&'*+.^_`|~-), got \"two words\"",
      "agent.yaml: log.redact[2]: expected a query parameter or header name such as \"x-api-key\" (letters, digits and !#$%&'*+.^_`|~-), got \"\"",
    ]);
    expect(problems(minimal({ log: { redact: 'x-api-key' } }))).toEqual([
      'agent.yaml: log.redact: expected a list such as ["x-api-key", "session"], got "x-api-key"',
    ]);
  });
});
