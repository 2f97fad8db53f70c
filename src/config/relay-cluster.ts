/**
 * relay.yaml `cluster:` — several relay nodes behind one load balancer
 * (docs/cluster.md). Each node has an id, a
 * node-to-node listener of its own (never the public port), a shared
 * secret that authenticates nodes to each other, and a way to find the
 * others: a DNS name that resolves to every node (a Kubernetes headless
 * Service) or a static list.
 */
import { hostname } from 'node:os';
import { hostPort } from './common.js';
import { caBundle, certMatchesKey, certificate, tlsKey, type LoadedText } from './files.js';
import type { Section } from './schema-check.js';
import { ValueError, formatValue, isHostname, type HostPort } from './units.js';
import { boolean, duration, secret } from './values.js';

export const CLUSTER_SECRET_ENV = 'CTBRIDGE_CLUSTER_SECRET';
/** The secret being rotated out (accepted, never the only one used): overrides `cluster.previousSecret`. */
export const CLUSTER_PREVIOUS_SECRET_ENV = 'CTBRIDGE_CLUSTER_PREVIOUS_SECRET';
/** The node id defaults to this variable (Kubernetes: the pod name, from the downward API), then the host name. */
export const NODE_ID_ENV = 'POD_NAME';
export const DEFAULT_CLUSTER_PORT = 7946;
const MIN_CLUSTER_SECRET = 32;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface ClusterPeers {
  /** A name that resolves (A/AAAA) to every node's address. */
  readonly dns: string | undefined;
  /** Port of the peers found through `dns`. */
  readonly port: number;
  /** Nodes by address. */
  readonly static: readonly HostPort[];
  /** ms between DNS lookups. */
  readonly refresh: number;
  /** Take node links from any address (NAT between nodes); default: only from the addresses of `dns` and `static`. */
  readonly acceptAnyAddress: boolean;
}

/** TLS on node links: the listener serves `cert`; with `ca`, it requires client certificates from that CA and dialers check servers against it. */
export interface ClusterTlsConfig {
  readonly cert: LoadedText;
  readonly key: LoadedText;
  /** CA bundle for the other nodes' certificates; absent: the system's CAs and no client certificates. */
  readonly ca: LoadedText | undefined;
  /** Name a peer's certificate must hold; absent: the host of the peer's address. */
  readonly serverName: string | undefined;
}

export interface ClusterConfig {
  readonly nodeId: string;
  /** The node-to-node listener. */
  readonly listen: HostPort;
  /** Secret shared by every node (at least 32 bytes): each side of a node link proves it holds it. */
  readonly secret: string;
  /** During a rotation: the old secret, still accepted from other nodes (and proved with) until every node has the new one. */
  readonly previousSecret: string | undefined;
  readonly peers: ClusterPeers;
  readonly tls: ClusterTlsConfig | undefined;
}

/** The secrets a node proves and accepts, current first. */
export function clusterSecrets(c: ClusterConfig): string[] {
  return c.previousSecret && c.previousSecret !== c.secret ? [c.secret, c.previousSecret] : [c.secret];
}

const CLUSTER_KEYS = ['nodeId', 'listen', 'secret', 'previousSecret', 'peers', 'tls'];
const PEER_KEYS = ['dns', 'port', 'static', 'refresh', 'acceptAnyAddress'];
const TLS_KEYS = ['cert', 'key', 'ca', 'serverName'];

/** Node ids: 1-63 letters, digits, ".", "_" and "-", starting with a letter or digit (also what a peer may announce). */
export function isNodeId(v: unknown): v is string {
  return typeof v === 'string' && NODE_ID.test(v);
}

function nodeId(v: unknown): string {
  if (isNodeId(v)) return v;
  throw new ValueError(`expected a node id of letters, digits, ".", "_" and "-" (1-63 characters), got ${formatValue(v)}`);
}

function dnsName(v: unknown): string {
  if (typeof v === 'string' && /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v)) return v.toLowerCase();
  throw new ValueError(`expected a DNS name such as "ctbridge-relay-peers.ctbridge.svc.cluster.local", got ${formatValue(v)}`);
}

function port(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535) return v;
  throw new ValueError(`expected a port number 1-65535, got ${formatValue(v)}`);
}

function serverName(v: unknown): string {
  if (typeof v === 'string' && isHostname(v)) return v.toLowerCase();
  throw new ValueError(`expected a host name such as "ctbridge-relay-peers", got ${formatValue(v)}`);
}

function parseClusterTls(s: Section): ClusterTlsConfig | undefined {
  const t = s.section('tls', TLS_KEYS);
  if (!t.present) return undefined;
  const baseDir = t.problems.baseDir;
  const cert = t.req('cert', certificate(baseDir), 'a PEM certificate file');
  const key = t.req('key', tlsKey(baseDir), 'a PEM private key file');
  if (cert && key && !certMatchesKey(cert.text, key.text)) t.fail('key', `expected the private key of cluster.tls.cert, got a key that does not match it (${key.file})`);
  return {
    cert: cert ?? { file: '', text: '' },
    key: key ?? { file: '', text: '' },
    ca: t.opt('ca', caBundle(baseDir)),
    serverName: t.opt('serverName', serverName),
  };
}

export function parseCluster(root: Section, env: NodeJS.ProcessEnv): ClusterConfig | undefined {
  const s = root.section('cluster', CLUSTER_KEYS);
  if (!s.present) return undefined;
  const envSecret = env[CLUSTER_SECRET_ENV] || undefined;
  let secretValue: string | undefined;
  if (envSecret !== undefined) secretValue = s.check(s.key('secret'), envSecret, secret(MIN_CLUSTER_SECRET, ` in the ${CLUSTER_SECRET_ENV} environment variable`));
  else secretValue = s.req('secret', secret(MIN_CLUSTER_SECRET), `a secret of at least ${MIN_CLUSTER_SECRET} bytes shared by every node (or the ${CLUSTER_SECRET_ENV} environment variable)`);
  const envPrevious = env[CLUSTER_PREVIOUS_SECRET_ENV] || undefined;
  const previousSecret = envPrevious !== undefined
    ? s.check(s.key('previousSecret'), envPrevious, secret(MIN_CLUSTER_SECRET, ` in the ${CLUSTER_PREVIOUS_SECRET_ENV} environment variable`))
    : s.opt('previousSecret', secret(MIN_CLUSTER_SECRET));
  const p = s.section('peers', PEER_KEYS);
  const dns = p.opt('dns', dnsName);
  const staticPeers = p.list('static', hostPort, '["10.0.0.11:7946", "10.0.0.12:7946"]') ?? [];
  if (!dns && staticPeers.length === 0) s.fail('peers', 'missing; expected peers.dns (a name that resolves to every node, e.g. a Kubernetes headless Service) or peers.static (a list of host:port)');
  const defaultId = env[NODE_ID_ENV] && NODE_ID.test(env[NODE_ID_ENV]) ? env[NODE_ID_ENV] : hostname().slice(0, 63);
  return {
    nodeId: s.get('nodeId', nodeId, defaultId),
    listen: s.get('listen', hostPort, { host: '0.0.0.0', port: DEFAULT_CLUSTER_PORT }),
    secret: secretValue ?? '',
    previousSecret,
    peers: {
      dns,
      port: p.get('port', port, DEFAULT_CLUSTER_PORT),
      static: staticPeers,
      refresh: p.get('refresh', duration({ min: 500 }), 5_000),
      acceptAnyAddress: p.get('acceptAnyAddress', boolean, false),
    },
    tls: parseClusterTls(s),
  };
}
