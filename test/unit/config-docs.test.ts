/**
 * docs/configuration.md stays in step with the config parsers: every key a
 * parser accepts (seen through Section.observe while a config with every
 * section is parsed) has a row in the reference tables of its program, and
 * every row names a key that exists. The Client Tracker keys of a tunnel
 * are documented in docs/client-tracker.md.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAgentConfig, parseRelayConfig } from '../../src/config/index.js';
import { Section } from '../../src/config/schema-check.js';

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');

/** The lines between a `## ` heading starting with `title` and the next one. */
function part(text: string, title: string): string {
  const start = text.indexOf(`\n## ${title}`);
  expect(start, `no "## ${title}" heading`).toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 4);
  return text.slice(start, end === -1 ? undefined : end);
}

/**
 * The keys the first column of each table row names: "`a.b` / `.c`" is a.b and
 * a.c (a leading dot continues the first key's parent), "`x`, `y`" is both.
 */
export function documentedKeys(text: string): Set<string> {
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const names = [...line.split('|')[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    const parent = names[0].includes('.') ? names[0].slice(0, names[0].lastIndexOf('.')) : '';
    for (const n of names) keys.add(n.startsWith('.') ? parent + n : n);
  }
  return keys;
}

/** Every key path the parser checks while parsing `obj`, tunnel names as `<name>`, list items as `[]`. */
function parsedKeys(parse: () => unknown): Set<string> {
  const seen = new Set<string>();
  Section.observe = (path, keys) => {
    if (!keys) return;
    const at = path.replace(/^tunnels\.[^.]+/, 'tunnels.<name>').replace(/\[\d+\]/g, '[]');
    for (const k of keys) seen.add(at ? `${at}.${k}` : k);
  };
  try {
    parse();
  } catch {
    // Only the keys matter here, not whether this config is complete.
  }
  // A key holding a mapping is documented through its own keys.
  return new Set([...seen].filter((k) => ![...seen].some((o) => o.startsWith(`${k}.`))));
}

afterEach(() => {
  Section.observe = undefined;
});

const SECRET = 'docs-test-secret-0123456789abcdef-0123';

describe('docs/configuration.md', () => {
  const text = doc('configuration.md');

  it('has a row for every relay.yaml key, and no row for a key the relay does not know', () => {
    const parsed = parsedKeys(() =>
      parseRelayConfig({
        auth: { keys: [{ id: 'k1', secret: SECRET }] },
        cluster: { secret: SECRET },
        tunnels: { ct: { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc' } } },
      }, 'relay.yaml', {}),
    );
    expect(parsed.has('cluster.peers.refresh')).toBe(true);
    const rows = documentedKeys(part(text, 'Relay configuration'));
    // Keys of a signing key are described in the auth.keys row; Client Tracker keys in client-tracker.md.
    const listed = (k: string) => rows.has(k) || (k.startsWith('auth.keys[].') && rows.has('auth.keys')) || k.startsWith('tunnels.<name>.clientTracker.');
    expect([...parsed].filter((k) => !listed(k))).toEqual([]);
    expect([...rows].filter((k) => !parsed.has(k) && k !== 'tunnels.<name>.clientTracker.*')).toEqual([]);
  });

  it('has a row for every agent.yaml key, and no row for a key the agent does not know', () => {
    const parsed = parsedKeys(() =>
      parseAgentConfig({ relay: 'wss://relay.example', token: 'x', tunnels: { web: { target: 'http://127.0.0.1:1' } } }, 'agent.yaml', {}),
    );
    expect(parsed.has('tunnels.<name>.timeouts.idle')).toBe(true);
    const rows = documentedKeys(part(text, 'Agent configuration'));
    expect([...parsed].filter((k) => !rows.has(k))).toEqual([]);
    expect([...rows].filter((k) => !parsed.has(k))).toEqual([]);
  });

  it("documents each Client Tracker key of a tunnel in the provider's guide", () => {
    const parsed = parsedKeys(() =>
      parseRelayConfig({ tunnels: { ct: { kind: 'clienttracker', clientTracker: {} } } }, 'relay.yaml', { CTBRIDGE_JWT_SECRET: SECRET }),
    );
    const ct = [...parsed].filter((k) => k.startsWith('tunnels.<name>.clientTracker.')).map((k) => k.slice('tunnels.<name>.clientTracker.'.length));
    expect(ct.length).toBeGreaterThan(0);
    const guide = doc('client-tracker.md');
    expect(ct.filter((k) => !guide.includes(`\`clientTracker.${k}\``))).toEqual([]);
  });
});

describe('documentedKeys', () => {
  it('reads "`a.b` / `.c`" as a.b and a.c, and "`x`, `y`" as both', () => {
    expect([...documentedKeys('| `heartbeat.interval` / `.timeout` | 10s |\n| `tls.cert`, `tls.key` | none |\n| `relay` | required |')])
      .toEqual(['heartbeat.interval', 'heartbeat.timeout', 'tls.cert', 'tls.key', 'relay']);
  });
});
