/**
 * What a reload may change in `cluster:`. The secrets (`secret`,
 * `previousSecret`) and `peers` apply live (Cluster.reconfigure); the
 * node's identity, its listener and TLS on node links are bound when the
 * process starts, so a reload that changes them is refused as a whole,
 * naming each key, and nothing of it is applied.
 */
import { formatHostPort, type ClusterConfig, type ClusterTlsConfig } from '../../src/config/index.js';

function tlsText(t: ClusterTlsConfig | undefined): string {
  return t ? [t.cert.text, t.key.text, t.ca?.text ?? '', t.serverName ?? ''].join('\0') : '';
}

/** One sentence per cluster key whose change needs a restart; empty when the reload may go ahead. */
export function clusterRestartOnly(now: ClusterConfig | undefined, next: ClusterConfig | undefined): string[] {
  if (!now && !next) return [];
  if (!now || !next) return [`cluster (${now ? 'removed' : 'added'}): a relay joins or leaves a cluster only at start; restart the relay to apply it`];
  const out: string[] = [];
  const restart = (key: string, was: string, is: string): void => {
    out.push(`${key} changed (${was} → ${is}): restart the relay to apply it`);
  };
  if (now.nodeId !== next.nodeId) restart('cluster.nodeId', now.nodeId, next.nodeId);
  if (formatHostPort(now.listen) !== formatHostPort(next.listen)) restart('cluster.listen', formatHostPort(now.listen), formatHostPort(next.listen));
  if (tlsText(now.tls) !== tlsText(next.tls)) {
    const state = (t: ClusterTlsConfig | undefined): string => (t ? (t.ca ? 'mutual TLS' : 'TLS') : 'off');
    restart('cluster.tls', state(now.tls), state(next.tls) === state(now.tls) ? `${state(next.tls)}, other files or serverName` : state(next.tls));
  }
  return out;
}
