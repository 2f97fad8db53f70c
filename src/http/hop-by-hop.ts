import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields; never forwarded by a proxy. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

/**
 * The hop-by-hop headers of a request: the fixed list plus those named in
 * `Connection`. Remove them from the outgoing request (not from the incoming
 * one, whose `Connection: close` still decides whether the client's own
 * connection is kept), so a client's `Connection: close` cannot close a
 * pooled tunnel stream. Node's client sets its own framing headers.
 */
export function hopByHopHeaders(headers: IncomingHttpHeaders, keepUpgrade = false): string[] {
  const names = new Set<string>();
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const name of connection.split(',')) {
      const n = name.trim().toLowerCase();
      if (n) names.add(n);
    }
  }
  for (const name of HOP_BY_HOP) names.add(name);
  if (keepUpgrade) {
    names.delete('connection');
    names.delete('upgrade');
  }
  return [...names].filter((n) => headers[n] !== undefined);
}

/** Removes hop-by-hop headers in place (WebSocket upgrades keep `Connection: upgrade` and `Upgrade`). */
export function stripHopByHop(headers: IncomingHttpHeaders, keepUpgrade = false): void {
  for (const name of hopByHopHeaders(headers, keepUpgrade)) delete headers[name];
  if (keepUpgrade) headers.connection = 'upgrade';
}
