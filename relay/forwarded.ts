/**
 * Who is calling, as far as the relay can trust it, and the X-Forwarded-*
 * headers the target sees.
 *
 * Providers in the field trust the LAST X-Forwarded-For entry as the caller
 * (PROTOCOL.md, "Provider access control"). So the relay never forwards a
 * chain a client could have written: the header it sends holds exactly one
 * address, the client it trusts. A peer in `trustedProxies` (a load balancer)
 * is believed about the hops before it; walking the chain from the right, the
 * first address that is not a trusted proxy is the client.
 */
import type { IncomingMessage } from 'node:http';
import type { CidrList } from '../src/config/index.js';

export interface ForwardedInfo {
  /** The caller's address as the relay trusts it. */
  client: string;
  proto: 'http' | 'https';
  /** Host the caller asked for (public host). */
  host: string;
}

/** Headers a client could use to claim another identity; dropped unless a trusted proxy set them. */
const SPOOFABLE = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded'];

export function resolveForwarded(req: IncomingMessage, trustedProxies: CidrList, encrypted: boolean): ForwardedInfo {
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
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

/** Replaces every client-supplied forwarding header with the relay's own. */
export function setForwardedHeaders(headers: IncomingMessage['headers'], info: ForwardedInfo): void {
  for (const name of SPOOFABLE) delete headers[name];
  headers['x-forwarded-for'] = info.client;
  headers['x-forwarded-proto'] = info.proto;
  if (info.host) headers['x-forwarded-host'] = info.host;
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so IPv4 callers look the same on dual-stack listeners. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
