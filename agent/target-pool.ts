/**
 * What the agent needs per tunnel to reach its target: the target URL split
 * into origin and base path, the Host header to send, optional Basic
 * credentials from the URL, and an undici Pool: keep-alive connections up
 * to a limit, the tunnel's connect timeout and TLS settings (verified
 * against the target URL's host name, whatever Host header is sent).
 */
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { buildConnector, Pool } from 'undici';
import type { AgentConfig, AgentTunnelConfig } from '../src/config/index.js';

export interface TunnelTarget {
  readonly name: string;
  readonly config: AgentTunnelConfig;
  /** `http://host:port` without user-info: for messages and logs. */
  readonly origin: string;
  /** The target URL's host[:port]: the Host header under `hostHeader: target`. */
  readonly host: string;
  /** The target URL's path without a trailing slash ('' for the root): prefixed to every request path. */
  readonly basePath: string;
  /** `Basic …` from the target URL's user-info, sent when the caller sent no Authorization. */
  readonly authorization: string | undefined;
  readonly pool: Pool;
}

export function createTunnelTarget(tunnel: AgentTunnelConfig, maxConnections: number): TunnelTarget {
  const url = new URL(tunnel.target);
  const origin = `${url.protocol}//${url.host}`;
  const authorization = url.username || url.password
    ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
    : undefined;
  const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const tls = url.protocol === 'https:'
    ? {
      ca: tunnel.ca ? [...rootCertificates, tunnel.ca.text] : undefined,
      rejectUnauthorized: tunnel.tlsVerify,
      servername: isIP(hostname) ? undefined : hostname,
    }
    : {};
  const connector = buildConnector({ timeout: tunnel.timeouts.connect, ...tls });
  const pool = new Pool(origin, {
    connections: maxConnections,
    pipelining: 1,
    // undici takes each request's TLS server name from its Host header, which
    // under `hostHeader: preserve` or a literal is not the target's name: the
    // connection always names (SNI) and verifies the target URL's host.
    connect: (options, callback) => connector({ ...options, servername: undefined }, callback),
    headersTimeout: tunnel.timeouts.idle,
    bodyTimeout: tunnel.timeouts.idle,
  });
  return { name: tunnel.name, config: tunnel, origin, host: url.host, basePath, authorization, pool };
}

/** One target per tunnel of agent.yaml; each pool may hold up to `limits.maxStreams` connections. */
export function createTunnelTargets(config: AgentConfig): Map<string, TunnelTarget> {
  const out = new Map<string, TunnelTarget>();
  for (const tunnel of Object.values(config.tunnels)) out.set(tunnel.name, createTunnelTarget(tunnel, config.limits.maxStreams));
  return out;
}
