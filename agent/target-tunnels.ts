/**
 * What the agent needs per tunnel to reach its target: the target URL split
 * into origin and base path, the Host header to send, optional Basic
 * credentials from the URL, and a keep-alive connection pool with a connect
 * timeout and the tunnel's TLS settings.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { AgentConfig, AgentTunnelConfig } from '../src/config/index.js';

/** A target did not accept the TCP connection within the tunnel's connect timeout. */
export class TargetConnectTimeout extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`connect timed out after ${timeoutMs}ms`);
    this.name = 'TargetConnectTimeout';
  }
}

export interface TunnelTarget {
  readonly name: string;
  readonly config: AgentTunnelConfig;
  /** `http://host:port` without user-info: for messages, logs and http-proxy's `target`. */
  readonly origin: string;
  readonly targetUrl: URL;
  /** The target URL's path without a trailing slash ('' for the root): prefixed to every request path. */
  readonly basePath: string;
  /** `user:password` from the target URL, for Basic auth to the target. */
  readonly auth: string | undefined;
  readonly agent: http.Agent;
}

/** Destroys a socket that has not connected within `ms`. */
function armConnectTimeout(socket: Duplex | null | undefined, ms: number): void {
  const s = socket as Socket | null | undefined;
  if (!s || !s.connecting || ms <= 0) return;
  const timer = setTimeout(() => s.destroy(new TargetConnectTimeout(ms)), ms);
  const clear = () => clearTimeout(timer);
  s.once('connect', clear);
  s.once('close', clear);
}

class HttpTargetAgent extends http.Agent {
  constructor(options: http.AgentOptions, private readonly connectTimeout: number) {
    super(options);
  }

  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    armConnectTimeout(socket, this.connectTimeout);
    return socket;
  }
}

class HttpsTargetAgent extends https.Agent {
  constructor(options: https.AgentOptions, private readonly connectTimeout: number) {
    super(options);
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = super.createConnection(options, callback);
    armConnectTimeout(socket, this.connectTimeout);
    return socket;
  }
}

export function createTunnelTarget(tunnel: AgentTunnelConfig): TunnelTarget {
  const url = new URL(tunnel.target);
  const origin = `${url.protocol}//${url.host}`;
  const auth = url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
  const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: 'lifo' as const };
  let agent: http.Agent;
  if (url.protocol === 'https:') {
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    agent = new HttpsTargetAgent(
      {
        ...common,
        ca: tunnel.ca ? [...rootCertificates, tunnel.ca.text] : undefined,
        rejectUnauthorized: tunnel.tlsVerify,
        // Verify (and SNI) against the target URL's host, whatever Host header the tunnel sends.
        servername: isIP(hostname) ? '' : hostname,
      },
      tunnel.timeouts.connect,
    );
  } else {
    agent = new HttpTargetAgent(common, tunnel.timeouts.connect);
  }
  return { name: tunnel.name, config: tunnel, origin, targetUrl: new URL(origin), basePath, auth, agent };
}

export function createTunnelTargets(config: AgentConfig): Map<string, TunnelTarget> {
  const out = new Map<string, TunnelTarget>();
  for (const tunnel of Object.values(config.tunnels)) out.set(tunnel.name, createTunnelTarget(tunnel));
  return out;
}

/** Applies the tunnel's Host header policy and base path to a request about to be proxied. */
export function prepareRequest(req: IncomingMessage, target: TunnelTarget): void {
  const policy = target.config.hostHeader;
  if (policy.mode === 'target') req.headers.host = target.targetUrl.host;
  else if (policy.mode === 'literal') req.headers.host = policy.host;
  // Plain concatenation: the path stays byte-for-byte what the relay sent.
  req.url = target.basePath + (req.url ?? '/');
}
