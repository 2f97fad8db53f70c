/**
 * One HTTP CONNECT tunnel through a forward proxy: Basic credentials (from
 * proxyAuth or the proxy URL's user-info) sent up front, or the NTLM
 * three-message handshake on one keep-alive connection. A refusal becomes a
 * ProxyRefusal carrying what the proxy said (status, the schemes it offers,
 * its Via/Server headers), never the credentials.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ProxyAuthConfig } from '../src/config/index.js';
import { untrusted } from '../src/log-text.js';
import { ntlmAuthenticate, ntlmNegotiate } from './ntlm.js';
import { whenConnected } from './socket-connect.js';
import { bodyLength, ntlmChallenge, offeredSchemes, ProxyProtocolError, SocketReader, type ProxyResponse } from './proxy-response.js';

export interface ProxyCredentials {
  scheme: 'basic' | 'ntlm';
  username: string;
  domain: string;
  password: string;
}

/** A refusal by the proxy itself (the relay was never reached). */
export class ProxyRefusal extends Error {
  readonly code = 'PROXY_REFUSED';
  constructor(
    readonly status: number,
    readonly statusText: string,
    /** Proxy-Authenticate schemes offered, in order. */
    readonly offered: string[],
    readonly via: string | undefined,
    readonly server: string | undefined,
    /** The scheme the agent tried, if any. */
    readonly tried: 'basic' | 'ntlm' | undefined,
    /**
     * Where it ended: `answer`, the proxy's answer to the (last) CONNECT;
     * `keepalive`, the proxy closed the connection between the NTLM messages;
     * `challenge`, the proxy's NTLM challenge could not be read.
     */
    readonly stage: 'answer' | 'keepalive' | 'challenge',
    detail?: string,
  ) {
    super(detail ?? `the forward proxy answered CONNECT with ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

export function credentialsFor(proxyUrl: URL, auth: ProxyAuthConfig | undefined): ProxyCredentials | undefined {
  if (auth) return { scheme: auth.scheme, username: auth.username, domain: auth.domain, password: auth.password };
  if (!proxyUrl.username) return undefined;
  return { scheme: 'basic', username: decodeURIComponent(proxyUrl.username), domain: '', password: decodeURIComponent(proxyUrl.password) };
}

function refusal(res: ProxyResponse, tried: ProxyCredentials['scheme'] | undefined, stage: ProxyRefusal['stage'], detail?: string): ProxyRefusal {
  const first = (name: string) => untrusted(res.headers.get(name)?.[0], 120);
  return new ProxyRefusal(res.status, untrusted(res.statusText, 60) ?? '', offeredSchemes(res).slice(0, 8), first('via'), first('server'), tried, stage, detail);
}

function connectToProxy(proxyUrl: URL, ca: string[] | undefined, signal: AbortSignal): Promise<net.Socket> {
  const port = Number(proxyUrl.port || (proxyUrl.protocol === 'https:' ? 443 : 80));
  const host = proxyUrl.hostname.replace(/^\[|\]$/g, '');
  const socket = proxyUrl.protocol === 'https:'
    ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(ca ? { ca } : {}) })
    : net.connect({ host, port });
  return whenConnected(socket, proxyUrl.protocol === 'https:' ? 'secureConnect' : 'connect', signal);
}

function connectRequest(target: string, authorization: string | undefined): string {
  return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${authorization ? `Proxy-Authorization: ${authorization}\r\n` : ''}Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\n\r\n`;
}

/**
 * Opens a tunnel to `target` (host:port) through the proxy; resolves with
 * the socket positioned at the start of the tunnel.
 */
export async function openTunnel(
  proxyUrl: URL,
  target: string,
  options: { credentials: ProxyCredentials | undefined; ca: string[] | undefined; signal: AbortSignal },
): Promise<net.Socket> {
  const { credentials, signal } = options;
  const socket = await connectToProxy(proxyUrl, options.ca, signal);
  const onAbort = () => socket.destroy(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  const reader = new SocketReader(socket);
  try {
    const basic = credentials?.scheme === 'basic' ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    socket.write(connectRequest(target, credentials?.scheme === 'ntlm' ? ntlmNegotiate(credentials) : basic));
    let res = await reader.head();
    if (credentials?.scheme === 'ntlm' && res.status === 407) {
      const challenge = ntlmChallenge(res);
      if (!challenge) throw refusal(res, 'ntlm', 'answer');
      const length = bodyLength(res);
      if (!res.keepAlive || length === undefined) {
        throw refusal(res, 'ntlm', 'keepalive', 'the forward proxy closed the connection in the middle of the NTLM handshake');
      }
      await reader.skip(length);
      let authenticate: string;
      try {
        authenticate = ntlmAuthenticate(challenge, credentials);
      } catch (err) {
        throw refusal(res, 'ntlm', 'challenge', (err as Error).message);
      }
      socket.write(connectRequest(target, authenticate));
      res = await reader.head();
    }
    if (res.status < 200 || res.status > 299) throw refusal(res, credentials?.scheme, 'answer');
    const rest = reader.release();
    if (rest.length) socket.unshift(rest);
    return socket;
  } catch (err) {
    reader.release();
    socket.destroy();
    if (err instanceof ProxyProtocolError && signal.aborted) throw signal.reason;
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
