import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigErrors } from '../../../src/errors.js';
import { clusterSecrets, parseRelayConfig } from '../../../src/config/index.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const SECRET = 'cluster-secret-0123456789abcdef-0123456789';
const OLD = 'the-old-secret-0123456789abcdef-0123456789';

function parse(cluster: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  return parseRelayConfig({ auth: { secret: 'test-secret-0123456789abcdef-0123456789' }, cluster: { secret: SECRET, peers: { static: ['127.0.0.1:7946'] }, ...cluster } }, 'relay.yaml', env, { baseDir: FIXTURES }).cluster!;
}

function problems(cluster: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parse(cluster, env);
    return [];
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
}

describe('relay.yaml cluster: trust settings', () => {
  it('defaults: one secret, address check on, no TLS', () => {
    const c = parse({});
    expect(clusterSecrets(c)).toEqual([SECRET]);
    expect(c.peers.acceptAnyAddress).toBe(false);
    expect(c.tls).toBeUndefined();
  });

  it('previousSecret: proved and accepted after the current one, from the file or the environment', () => {
    expect(clusterSecrets(parse({ previousSecret: OLD }))).toEqual([SECRET, OLD]);
    expect(clusterSecrets(parse({}, { CTBRIDGE_CLUSTER_PREVIOUS_SECRET: OLD }))).toEqual([SECRET, OLD]);
    // The same secret twice is one secret.
    expect(clusterSecrets(parse({ previousSecret: SECRET }))).toEqual([SECRET]);
  });

  it('refuses a short previousSecret without echoing it', () => {
    const p = problems({ previousSecret: 'short-one' });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^relay\.yaml: cluster\.previousSecret: expected a string of at least 32 bytes/);
    expect(p[0]).not.toContain('short-one');
  });

  it('peers.acceptAnyAddress is a boolean', () => {
    expect(parse({ peers: { static: ['127.0.0.1:7946'], acceptAnyAddress: true } }).peers.acceptAnyAddress).toBe(true);
    expect(problems({ peers: { static: ['127.0.0.1:7946'], acceptAnyAddress: 'yes' } })).toEqual(['relay.yaml: cluster.peers.acceptAnyAddress: expected true or false, got "yes"']);
  });

  it('tls: cert, key, ca and serverName are loaded and checked', () => {
    const c = parse({ tls: { cert: 'tls/relay.crt', key: 'tls/relay.key', ca: 'tls/relay.crt', serverName: 'Relay-Peers' } });
    expect(c.tls?.cert.file).toBe(join(FIXTURES, 'tls/relay.crt'));
    expect(c.tls?.ca?.text).toContain('BEGIN CERTIFICATE');
    expect(c.tls?.serverName).toBe('relay-peers');
    expect(problems({ tls: { cert: 'tls/relay.crt' } })).toEqual(['relay.yaml: cluster.tls.key: missing; expected a PEM private key file']);
    expect(problems({ tls: { cert: 'tls/relay.crt', key: 'tls/other.key' } })[0]).toMatch(/^relay\.yaml: cluster\.tls\.key: expected the private key of cluster\.tls\.cert/);
    expect(problems({ tls: { cert: 'tls/relay.crt', key: 'tls/relay.key', serverName: 'not a name' } })[0]).toMatch(/cluster\.tls\.serverName: expected a host name/);
    expect(problems({ tls: { cert: 'tls/relay.crt', key: 'tls/relay.key', certs: 'x' } })[0]).toMatch(/cluster\.tls\.certs: unknown key/);
  });
});
