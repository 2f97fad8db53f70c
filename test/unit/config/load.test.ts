import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors } from '../../../src/errors.js';
import { loadAgentConfig, loadRelayConfig, readConfigFile } from '../../../src/config/load.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const tmp = mkdtempSync(join(tmpdir(), 'ctbridge-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('readConfigFile', () => {
  it('names the file and the OS reason when it cannot be read', () => {
    const missing = join(tmp, 'nope.yaml');
    const err = thrown(() => loadRelayConfig(missing, {}));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'CTB_CONFIG_INVALID', file: missing, key: '' });
    expect(err.message).toBe(`${missing}: cannot read the config file (ENOENT: no such file or directory)`);
    expect(thrown(() => loadAgentConfig(tmp, {})).message).toMatch(/cannot read the config file \(EISDIR/);
  });

  it('gives line and column of a YAML syntax error, without echoing the line', () => {
    const err = thrown(() => loadRelayConfig(join(FIXTURES, 'bad-syntax.yaml'), {}));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/bad-syntax\.yaml: YAML syntax error at line \d+, column \d+: Missing closing "quote/);
    expect(err.message).not.toContain('an-unterminated-secret');
    const tabs = write('tabs.yaml', 'listen: x\n\tlog: 1\n');
    expect(thrown(() => loadRelayConfig(tabs, {})).message).toBe(`${tabs}: YAML syntax error at line 2, column 1: Tabs are not allowed as indentation`);
  });

  it('rejects duplicate keys, several documents and bad aliases', () => {
    expect(thrown(() => readConfigFile(write('dup.yaml', 'a: 1\na: 2\n'))).message).toMatch(/line 2, column 1: Map keys must be unique/);
    expect(thrown(() => readConfigFile(write('docs.yaml', 'a: 1\n---\nb: 2\n'))).message).toMatch(
      /a config file holds one YAML document; remove the "---" separator/,
    );
    expect(thrown(() => readConfigFile(write('alias.yaml', 'a: *x\n')))).toBeInstanceOf(ConfigError);
  });

  it('reads an empty file as null (all defaults)', () => {
    expect(readConfigFile(write('empty.yaml', '# nothing\n'))).toBeNull();
    const cfg = loadRelayConfig(write('empty-relay.yaml', ''), { CTBRIDGE_JWT_SECRET: 'x'.repeat(32) });
    expect(cfg.listen.port).toBe(8080);
  });

  it('reports a top level that is not a mapping, and nothing else', () => {
    const err = thrown(() => loadAgentConfig(join(FIXTURES, 'top-list.yaml'), {}));
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors.map((e) => e.message)).toEqual([`${join(FIXTURES, 'top-list.yaml')}: expected a mapping, got a list`]);
  });
});

describe('loading the fixture files', () => {
  it('loads relay.yaml with paths relative to its directory', () => {
    const cfg = loadRelayConfig(join(FIXTURES, 'relay.yaml'), {});
    expect(cfg.tls?.cert.file).toBe(join(FIXTURES, 'tls/relay.crt'));
    expect(cfg.auth.keys[0].publicKey?.format).toBe('spki');
    expect(cfg.baseDomain).toBe('tunnels.example.com');
    expect(cfg.tunnels.cioc.clientTracker?.rewrite).toEqual(['launchURL', 'resourceInfoURL']);
    expect(cfg.tunnels.ucws.kind).toBe('http');
    expect(cfg.trustedProxies.contains('fd00::1')).toBe(true);
  });

  it('loads agent.yaml', () => {
    const cfg = loadAgentConfig(join(FIXTURES, 'agent.yaml'), {});
    expect(Object.keys(cfg.tunnels)).toEqual(['ucws', 'app', 'keep']);
    expect(cfg.tunnels.ucws.target).toBe('http://127.0.0.1:7224');
    expect(cfg.ca?.file).toBe(join(FIXTURES, 'tls/relay.crt'));
  });

  it('reports a YAML number where a duration belongs', () => {
    const file = write('agent-num.yaml', 'relay: ws://r\ntoken: a.b.c\ntunnels:\n  t:\n    target: http://h\ntimeouts:\n  idle: 30\n');
    const err = thrown(() => loadAgentConfig(file, {})) as ConfigErrors;
    expect(err.errors.map((e) => [e.key, e.message])).toEqual([
      ['timeouts.idle', `${file}: timeouts.idle: expected a duration such as "30s", "500ms", "2m", got 30`],
    ]);
  });

  it('ignores an own __proto__ key rather than reading through it', () => {
    const file = write('proto.yaml', '__proto__:\n  listen: "x"\nauth:\n  secret: "0123456789abcdef0123456789abcdef"\n');
    const err = thrown(() => loadRelayConfig(file, {})) as ConfigErrors;
    expect(err.errors.map((e) => e.key)).toEqual(['__proto__']);
  });
});

describe('freezing', () => {
  it('returns deeply frozen configs: mutation throws in strict mode', () => {
    const relay = loadRelayConfig(join(FIXTURES, 'relay.yaml'), {});
    const agent = loadAgentConfig(join(FIXTURES, 'agent.yaml'), {});
    expect(() => {
      (relay as { publicUrl: string }).publicUrl = 'http://evil';
    }).toThrow(TypeError);
    expect(() => {
      (relay.limits as { maxRequestBody: number }).maxRequestBody = 1;
    }).toThrow(TypeError);
    expect(() => {
      (relay.tunnels as Record<string, unknown>).evil = {};
    }).toThrow(TypeError);
    expect(() => {
      (relay.tunnels.cioc.clientTracker!.rewrite as string[]).push('launchURL');
    }).toThrow(TypeError);
    expect(() => {
      (agent.tunnels.app.allowPaths as string[])[0] = '/';
    }).toThrow(TypeError);
    expect(() => {
      (agent.tunnels.app.timeouts as { connect: number }).connect = 0;
    }).toThrow(TypeError);
    expect(Object.isFrozen(agent.egress!.allowFrom)).toBe(true);
    expect(Object.isFrozen(relay.auth.keys[0].publicKey)).toBe(true);
    expect(Object.isFrozen(relay.auth.revoked.agents)).toBe(true);
  });
});
