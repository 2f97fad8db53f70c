/**
 * The http.Agent the agent's WebSocket to the relay dials through: for each
 * connection it asks `route()` for the hops to try in order (a proxy URL, or
 * DIRECT), opens a CONNECT tunnel through the first that answers (falling
 * back to the next only when a proxy cannot be reached, as browsers do:
 * `openRoute`, which `agent verify --connect` uses too), and
 * for a wss:// relay completes TLS over the tunnel with the configured trust.
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { openTunnel, ProxyRefusal, type ProxyCredentials } from './proxy-tunnel.js';
import { whenConnected } from './socket-connect.js';

export type Hop = { kind: 'direct' } | { kind: 'proxy'; url: URL; credentials: ProxyCredentials | undefined };

export interface TunnelAgentOptions {
  secure: boolean;
  /** host:port of the relay. */
  target: string;
  ca: string[] | undefined;
  route: () => Promise<Hop[]>;
  /** Told which hop each attempt uses (for messages naming the proxy). */
  onHop?: (hop: Hop) => void;
  timeoutMs: number;
}

/** A proxy that could not be reached at all: the next hop in the list is tried. */
function isUnreachable(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT';
}

export class TunnelAgent extends http.Agent {
  constructor(private readonly options: TunnelAgentOptions) {
    super({ keepAlive: false });
    // http(s).request compares this with the URL's protocol.
    (this as unknown as { protocol: string }).protocol = options.secure ? 'https:' : 'http:';
  }

  override createConnection(req: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const done = callback ?? (() => undefined);
    this.dial(req).then(
      (socket) => done(null, socket),
      (err: Error) => done(err, undefined as unknown as Duplex),
    );
    return undefined;
  }

  private async dial(req: http.ClientRequestArgs): Promise<Duplex> {
    const { options } = this;
    const signal = AbortSignal.timeout(options.timeoutMs);
    const raw = await openRoute(await options.route(), options.target, { ca: options.ca, signal, onHop: options.onHop });
    if (!options.secure) return raw;
    const tlsOptions = req as tls.ConnectionOptions & http.ClientRequestArgs;
    const host = String(tlsOptions.servername || req.host || req.hostname || options.target.replace(/:\d+$/, ''));
    return relayTls(raw, host, {
      ca: tlsOptions.ca ?? options.ca,
      rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true,
      ...(tlsOptions.checkServerIdentity ? { checkServerIdentity: tlsOptions.checkServerIdentity } : {}),
    });
  }
}

/** TLS to the relay over `raw`: the host name (brackets of an IPv6 literal dropped) as SNI unless it is an address. */
export function relayTls(raw: net.Socket, host: string, options: Pick<tls.ConnectionOptions, 'ca' | 'rejectUnauthorized' | 'checkServerIdentity'>): tls.TLSSocket {
  const name = host.replace(/^\[|\]$/g, '');
  return tls.connect({ socket: raw, servername: net.isIP(name) ? undefined : name, ...options });
}

export interface RouteOptions {
  /** Trust for an https:// proxy. */
  ca: string[] | undefined;
  /** Bounds the whole route (every hop). */
  signal: AbortSignal;
  /** Told which hop each attempt uses, before it starts. */
  onHop?: (hop: Hop) => void;
  /** Told when a hop could not be reached and the next one is tried. */
  onSkip?: (hop: Hop, err: unknown) => void;
}

/**
 * A TCP connection to `target` (host:port) along the first of `hops` that
 * can be reached: directly, or a CONNECT tunnel through a proxy. The next
 * hop is tried only when a proxy cannot be reached at all (refused, DNS,
 * unreachable), as browsers do; a proxy's refusal or any other failure is
 * the answer. The agent's dial and `agent verify --connect` both go this way.
 */
export async function openRoute(hops: readonly Hop[], target: string, o: RouteOptions): Promise<net.Socket> {
  let lastError: unknown;
  for (const [i, hop] of hops.entries()) {
    o.onHop?.(hop);
    try {
      return hop.kind === 'direct' ? await direct(target, o.signal) : await openTunnel(hop.url, target, { credentials: hop.credentials, ca: o.ca, signal: o.signal });
    } catch (err) {
      lastError = err;
      if (err instanceof ProxyRefusal || !isUnreachable(err) || o.signal.aborted || i === hops.length - 1) throw err;
      o.onSkip?.(hop, err);
    }
  }
  throw lastError ?? new Error('the proxy configuration gave no way to reach the relay');
}

export async function direct(target: string, signal: AbortSignal): Promise<net.Socket> {
  const colon = target.lastIndexOf(':');
  const socket = net.connect({ host: target.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(target.slice(colon + 1)) });
  return whenConnected(socket, 'connect', signal);
}
