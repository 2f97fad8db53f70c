import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields; never forwarded by a proxy. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

/**
 * Removes hop-by-hop headers (and those named in `Connection`) in place, so a
 * client's `Connection: close` cannot close a pooled tunnel stream. For a
 * WebSocket upgrade, `Connection: upgrade` and `Upgrade` are kept.
 */
export function stripHopByHop(headers: IncomingHttpHeaders, keepUpgrade = false): void {
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n && !(keepUpgrade && n === 'upgrade')) delete headers[n];
    }
  }
  for (const name of HOP_BY_HOP) {
    if (keepUpgrade && (name === 'connection' || name === 'upgrade')) continue;
    delete headers[name];
  }
  if (keepUpgrade) headers.connection = 'upgrade';
}
