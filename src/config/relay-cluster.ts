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
import type { Section } from './schema-check.js';
import { ValueError, formatValue, type HostPort } from './units.js';
import { duration, secret } from './values.js';

export const CLUSTER_SECRET_ENV = 'CTBRIDGE_CLUSTER_SECRET';
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
}

export interface ClusterConfig {
  readonly nodeId: string;
  /** The node-to-node listener. */
  readonly listen: HostPort;
  /** HS256 secret shared by every node (at least 32 bytes). */
  readonly secret: string;
  readonly peers: ClusterPeers;
}

const CLUSTER_KEYS = ['nodeId', 'listen', 'secret', 'peers'];
const PEER_KEYS = ['dns', 'port', 'static', 'refresh'];

function nodeId(v: unknown): string {
  if (typeof v === 'string' && NODE_ID.test(v)) return v;
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

export function parseCluster(root: Section, env: NodeJS.ProcessEnv): ClusterConfig | undefined {
  const s = root.section('cluster', CLUSTER_KEYS);
  if (!s.present) return undefined;
  const envSecret = env[CLUSTER_SECRET_ENV] || undefined;
  let secretValue: string | undefined;
  if (envSecret !== undefined) secretValue = s.check(s.key('secret'), envSecret, secret(MIN_CLUSTER_SECRET, ` in the ${CLUSTER_SECRET_ENV} environment variable`));
  else secretValue = s.req('secret', secret(MIN_CLUSTER_SECRET), `a secret of at least ${MIN_CLUSTER_SECRET} bytes shared by every node (or the ${CLUSTER_SECRET_ENV} environment variable)`);
  const p = s.section('peers', PEER_KEYS);
  const dns = p.opt('dns', dnsName);
  const staticPeers = p.list('static', hostPort, '["10.0.0.11:7946", "10.0.0.12:7946"]') ?? [];
  if (!dns && staticPeers.length === 0) s.fail('peers', 'missing; expected peers.dns (a name that resolves to every node, e.g. a Kubernetes headless Service) or peers.static (a list of host:port)');
  const defaultId = env[NODE_ID_ENV] && NODE_ID.test(env[NODE_ID_ENV]) ? env[NODE_ID_ENV] : hostname().slice(0, 63);
  return {
    nodeId: s.get('nodeId', nodeId, defaultId),
    listen: s.get('listen', hostPort, { host: '0.0.0.0', port: DEFAULT_CLUSTER_PORT }),
    secret: secretValue ?? '',
    peers: {
      dns,
      port: p.get('port', port, DEFAULT_CLUSTER_PORT),
      static: staticPeers,
      refresh: p.get('refresh', duration({ min: 500 }), 5_000),
    },
  };
}
