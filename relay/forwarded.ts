/**
 * Who is calling, as far as the relay can trust it, and the forwarding
 * headers the target sees.
 *
 * Providers in the field trust the LAST X-Forwarded-For entry as the caller
 * (docs/client-tracker-protocol.md, "Provider access control"). So the relay
 * never forwards a chain a client could have written: the header it sends
 * holds exactly one address, the client it trusts. A peer in
 * `trustedProxies` (a load balancer) is believed about the hops before it;
 * walking the chain from the right, the first address that is not a
 * trusted proxy is the client.
 */
import type { IncomingMessage } from 'node:http';
import type { CidrList } from '../src/config/index.js';
import { normalizeIp, peerAddress } from '../src/http/client-address.js';
import { REQUEST_ID_HEADER } from '../src/protocol.js';

export interface ForwardedInfo {
  /** The caller's address as the relay trusts it. */
  client: string;
  proto: 'http' | 'https';
  /** Host the caller asked for (public host). */
  host: string;
}

/**
 * Headers a client could use to claim another identity or forge the relay's
 * own: always dropped from what the client sent; the relay adds its own.
 */
export const RELAY_OWNED: ReadonlySet<string> = new Set([
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded', REQUEST_ID_HEADER,
]);

export function resolveForwarded(req: IncomingMessage, trustedProxies: CidrList, encrypted: boolean): ForwardedInfo {
  const peer = peerAddress(req.socket);
  const host = req.headers.host ?? '';
  const proto = encrypted ? 'https' : 'http';
  if (trustedProxies.size === 0 || !trustedProxies.contains(peer)) {
    return { client: peer, proto, host };
  }
  const chain = headerList(req.headers['x-forwarded-for']).map(normalizeIp);
  let client = peer;
  for (let i = chain.length - 1; i >= 0 && trustedProxies.contains(client); i--) client = chain[i];
  const fwdProto = headerList(req.headers['x-forwarded-proto'])[0];
  const fwdHost = headerList(req.headers['x-forwarded-host'])[0];
  return {
    client,
    proto: fwdProto === 'https' || fwdProto === 'http' ? fwdProto : proto,
    host: fwdHost || host,
  };
}

/** The relay's own header pairs, which lead every request head. */
export function forwardedPairs(info: ForwardedInfo, requestId: string): string[] {
  const pairs = ['X-Forwarded-For', info.client, 'X-Forwarded-Proto', info.proto];
  if (info.host) pairs.push('X-Forwarded-Host', info.host);
  pairs.push('X-Ctbridge-Request-Id', requestId);
  return pairs;
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
