/**
 * deploy/: the example configs load as they ship (what `relay verify` and
 * `agent verify` check; the relay's once its placeholder secret is replaced),
 * mention every key the parsers know, and state the
 * real defaults wherever they set a key to "its default"; the systemd units
 * give a graceful shutdown enough time.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  AGENT_TOKEN_ENV,
  JWT_SECRET_ENV,
  loadAgentConfig,
  loadRelayConfig,
  parseAgentConfig,
  parseDuration,
  parseRelayConfig,
} from '../../src/config/index.js';
import { ConfigErrors } from '../../src/errors.js';

const deploy = (name: string): string => fileURLToPath(new URL(`../../deploy/${name}`, import.meta.url));
const text = (name: string): string => readFileSync(deploy(name), 'utf8');

const RELAY_EXAMPLE = deploy('relay.example.yaml');
const AGENT_EXAMPLE = deploy('agent.example.yaml');
/** No CTBRIDGE_* variables from the environment running the tests. */
const NO_ENV = {};
const SECRET = 'x'.repeat(32);
/** What the systemd unit's relay.env provides: the secret that replaces the template's placeholder. */
const RELAY_ENV = { [JWT_SECRET_ENV]: 'dGhpcyBpcyAzMiBieXRlcyBvZiByYW5kb20hIQ==' };
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';
const UNKNOWN = 'zzqqxxkk';

/** Every key named in a YAML template, set or commented out (`# key: value`), also as a list item (`- key: value`). */
function keysIn(yaml: string): Set<string> {
  return new Set([...yaml.matchAll(/^[ \t]*#?[ \t]*(?:-[ \t]+)?([A-Za-z][A-Za-z0-9]*):(?:[ \t]|$)/gm)].map((m) => m[1]!));
}

/** The keys a parser knows at one place, from its "unknown key (known keys: …)" message. */
function knownKeys(parse: (obj: unknown) => unknown, obj: unknown): string[] {
  try {
    parse(obj);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    const messages = (err as ConfigErrors).errors.map((e) => e.message);
    const listed = messages.map((m) => /unknown key \(known keys: ([^)]*)\)/.exec(m)?.[1]).find((m) => m !== undefined);
    expect(listed, messages.join('\n')).toBeDefined();
    return listed!.split(', ');
  }
  throw new Error('expected ConfigErrors');
}

describe('deploy/relay.example.yaml', () => {
  const parse = (obj: unknown) => parseRelayConfig(obj, 'relay.yaml', NO_ENV);
  const ctTunnel = { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc/' } };

  it('refuses to load as shipped: the placeholder secret must be replaced, and the message says how', () => {
    let err: unknown;
    try {
      loadRelayConfig(RELAY_EXAMPLE, NO_ENV);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigErrors);
    expect((err as ConfigErrors).errors.map((e) => [e.key, e.message])).toEqual([
      ['auth.secret', `${RELAY_EXAMPLE}: auth.secret: expected a secret of your own, got the template's placeholder; generate one with \`openssl rand -base64 32\``],
    ]);
  });

  it('loads with the secret from CTBRIDGE_JWT_SECRET, as the systemd unit gives it (relay verify passes)', () => {
    const cfg = loadRelayConfig(RELAY_EXAMPLE, RELAY_ENV);
    expect(cfg.auth.keys).toEqual([expect.objectContaining({ id: undefined, secret: RELAY_ENV[JWT_SECRET_ENV], where: JWT_SECRET_ENV })]);
    expect(cfg.auth.revoked).toEqual({ agents: [], tokens: [] });
    expect(cfg.tunnels.cioc?.kind).toBe('clienttracker');
    expect(cfg.tunnels.cioc?.clientTracker?.rpcUrl).toBe('https://ct.example/rpc/');
  });

  it('states the real defaults', () => {
    const cfg = loadRelayConfig(RELAY_EXAMPLE, RELAY_ENV);
    const def = parse({ auth: { secret: SECRET }, tunnels: { cioc: ctTunnel } });
    expect(cfg.listen).toEqual(def.listen);
    expect(cfg.agentPath).toBe(def.agentPath);
    expect(cfg.auth.audience).toBe(def.auth.audience);
    expect(cfg.auth.issuer).toBe(def.auth.issuer);
    expect(cfg.auth.revoked).toEqual(def.auth.revoked);
    expect(cfg.trustedProxies.toJSON()).toEqual(def.trustedProxies.toJSON());
    expect(cfg.limits).toEqual(def.limits);
    expect(cfg.timeouts).toEqual(def.timeouts);
    expect(cfg.heartbeat).toEqual(def.heartbeat);
    expect(cfg.streamWindow).toBe(def.streamWindow);
    expect(cfg.log).toEqual(def.log);
    expect(cfg.admin.listen).toEqual(def.admin.listen);
    expect(cfg.admin.allowFrom.toJSON()).toEqual(def.admin.allowFrom.toJSON());
    expect(cfg.cluster).toBeUndefined();
    expect(cfg.tunnels.cioc?.clientTracker).toEqual(def.tunnels.cioc?.clientTracker);
    // Per-tunnel overrides are left commented out, so the tunnel inherits.
    expect(cfg.tunnels.cioc?.maxRequestBody).toBe(def.tunnels.cioc?.maxRequestBody);
    expect(cfg.tunnels.cioc?.timeouts).toEqual(def.tunnels.cioc?.timeouts);
  });

  it('mentions every key the relay config knows', () => {
    const base = { auth: { secret: SECRET } };
    const known = [
      ...knownKeys(parse, { ...base, [UNKNOWN]: 1 }),
      ...knownKeys(parse, { ...base, auth: { secret: SECRET, [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { auth: { keys: [{ id: 'k1', secret: SECRET, [UNKNOWN]: 1 }] } }),
      ...knownKeys(parse, { ...base, auth: { secret: SECRET, revoked: { [UNKNOWN]: 1 } } }),
      ...knownKeys(parse, { ...base, tls: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, limits: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, timeouts: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, heartbeat: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, log: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, admin: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, cluster: { secret: SECRET, peers: { static: ['10.0.0.1:7946'] }, [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...base, cluster: { secret: SECRET, peers: { static: ['10.0.0.1:7946'], [UNKNOWN]: 1 } } }),
      ...knownKeys(parse, { ...base, tunnels: { cioc: { ...ctTunnel, [UNKNOWN]: 1 } } }),
      ...knownKeys(parse, { ...base, tunnels: { cioc: { ...ctTunnel, timeouts: { [UNKNOWN]: 1 } } } }),
      ...knownKeys(parse, { ...base, tunnels: { cioc: { kind: 'clienttracker', clientTracker: { ...ctTunnel.clientTracker, [UNKNOWN]: 1 } } } }),
    ];
    const mentioned = keysIn(text('relay.example.yaml'));
    expect(known.filter((k) => !mentioned.has(k))).toEqual([]);
  });
});

describe('deploy/agent.example.yaml', () => {
  const parse = (obj: unknown) => parseAgentConfig(obj, 'agent.yaml', NO_ENV);
  const minimal = { relay: 'wss://relay.example.com', token: TOKEN, tunnels: { cioc: { target: 'http://intranet.example' } } };

  it('loads as shipped (agent verify passes)', () => {
    const cfg = loadAgentConfig(AGENT_EXAMPLE, NO_ENV);
    expect(cfg.tokenSource).toBe('config');
    expect(cfg.tunnels.cioc?.allowPaths).toEqual(['/ct/ctregister.asp', '/ct/ctfetch.asp', '/ct/ctfetchtax.asp']);
    expect(cfg.egress?.listen).toEqual({ host: '127.0.0.1', port: 8181 });
  });

  it('the environment token overrides the placeholder, as the systemd unit relies on', () => {
    const cfg = loadAgentConfig(AGENT_EXAMPLE, { [AGENT_TOKEN_ENV]: TOKEN });
    expect(cfg.token).toBe(TOKEN);
    expect(cfg.tokenSource).toBe('env');
  });

  it('states the real defaults', () => {
    const cfg = loadAgentConfig(AGENT_EXAMPLE, NO_ENV);
    const def = parse({ ...minimal, egress: { listen: '127.0.0.1:8181' } });
    expect(cfg.proxy).toEqual(def.proxy);
    expect(cfg.egress?.allowFrom.toJSON()).toEqual(def.egress?.allowFrom.toJSON());
    expect(cfg.egress?.maxBody).toBe(def.egress?.maxBody);
    expect(cfg.reconnect).toEqual(def.reconnect);
    expect(cfg.heartbeat).toEqual(def.heartbeat);
    expect(cfg.limits).toEqual(def.limits);
    expect(cfg.timeouts).toEqual(def.timeouts);
    expect(cfg.streamWindow).toBe(def.streamWindow);
    expect(cfg.log).toEqual(def.log);
    expect(cfg.admin.listen).toEqual(def.admin.listen);
    expect(cfg.admin.allowFrom.toJSON()).toEqual(def.admin.allowFrom.toJSON());
    const tunnel = cfg.tunnels.cioc!;
    const defTunnel = def.tunnels.cioc!;
    expect(tunnel.hostHeader).toEqual(defTunnel.hostHeader);
    expect(tunnel.tlsVerify).toBe(defTunnel.tlsVerify);
    expect(tunnel.timeouts).toEqual(defTunnel.timeouts);
  });

  it('mentions every key the agent config knows', () => {
    const known = [
      ...knownKeys(parse, { ...minimal, [UNKNOWN]: 1 }),
      ...knownKeys(parse, { ...minimal, tunnels: { cioc: { target: 'http://intranet.example', [UNKNOWN]: 1 } } }),
      ...knownKeys(parse, { ...minimal, tunnels: { cioc: { target: 'http://intranet.example', timeouts: { [UNKNOWN]: 1 } } } }),
      ...knownKeys(parse, { ...minimal, egress: { listen: '127.0.0.1:8181', [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, reconnect: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, heartbeat: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, limits: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, timeouts: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, log: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, admin: { [UNKNOWN]: 1 } }),
      ...knownKeys(parse, { ...minimal, proxyAuth: { scheme: 'basic', username: 'u', passwordFile: '/dev/null', [UNKNOWN]: 1 } }),
    ];
    const mentioned = keysIn(text('agent.example.yaml'));
    expect(known.filter((k) => !mentioned.has(k))).toEqual([]);
  });
});

describe('deploy/*.service', () => {
  const unit = (name: string) => {
    const source = text(name);
    const values = (key: string): string[] =>
      [...source.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
    return { source, values };
  };

  it.each([
    ['ctbridge-agent.service', 'agent', AGENT_EXAMPLE, AGENT_TOKEN_ENV, '/etc/ctbridge/agent.env'],
    ['ctbridge-relay.service', 'relay', RELAY_EXAMPLE, JWT_SECRET_ENV, '-/etc/ctbridge/relay.env'],
  ])('%s runs the installed package, reloads on SIGHUP, restarts, and outlasts shutdownGrace', (name, command, example, envVar, envFile) => {
    const u = unit(name);
    expect(u.values('ExecStart')).toEqual([`/usr/bin/node /opt/ctbridge/node_modules/ctbridge/bin/ctbridge.js ${command} --config /etc/ctbridge/${command}.yaml`]);
    expect(u.values('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(u.values('WorkingDirectory')).toEqual(['/opt/ctbridge']);
    expect(u.values('Restart')).toEqual(['always']);
    expect(u.values('RestartSec')).toEqual(['2']);
    expect(u.values('EnvironmentFile')).toEqual([envFile]);
    expect(u.source).toContain(`${envVar}=`);
    expect(u.values('KillSignal')).toEqual(['SIGTERM']);
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) expect(u.values(key)).toEqual(['yes']);
    expect(u.values('ProtectSystem')).toEqual(['strict']);
    expect(u.values('CapabilityBoundingSet')).toEqual(['']);
    expect(u.values('MemoryDenyWriteExecute')).toEqual([]);
    const stop = parseDuration(u.values('TimeoutStopSec')[0]);
    const grace = command === 'agent' ? loadAgentConfig(example, NO_ENV).timeouts.shutdownGrace : loadRelayConfig(example, RELAY_ENV).timeouts.shutdownGrace;
    expect(stop).toBeGreaterThan(grace);
  });
});
