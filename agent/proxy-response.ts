/**
 * Reading a forward proxy's answer to CONNECT from the raw socket: the
 * status line and headers (bounded), and the body of a refusal (bounded,
 * discarded) so that the next CONNECT of an NTLM handshake can follow on
 * the same keep-alive connection. Everything read is hostile input.
 */
import type { Duplex } from 'node:stream';

export const MAX_HEAD = 32 * 1024;
export const MAX_BODY = 1024 * 1024;

export interface ProxyResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers keep every value. */
  headers: Map<string, string[]>;
  /** Whether the proxy keeps the connection open for another request. */
  keepAlive: boolean;
}

export class ProxyProtocolError extends Error {}

/** Reads from a paused socket on demand; bytes read past what was asked for stay in `buffered`. */
export class SocketReader {
  private buffered = Buffer.alloc(0);
  private ended: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.wake?.();
  };
  private readonly onEnd = (err?: unknown) => {
    this.ended ??= err instanceof Error ? err : new ProxyProtocolError('the forward proxy closed the connection before answering CONNECT');
    this.wake?.();
  };

  constructor(private readonly socket: Duplex) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  private async more(): Promise<void> {
    if (this.ended) throw this.ended;
    await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
  }

  async head(): Promise<ProxyResponse> {
    for (;;) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end >= 0) {
        const text = this.buffered.subarray(0, end).toString('latin1');
        this.buffered = this.buffered.subarray(end + 4);
        return parseHead(text);
      }
      if (this.buffered.length > MAX_HEAD) throw new ProxyProtocolError(`the proxy's answer has more than ${MAX_HEAD} bytes of headers`);
      await this.more();
    }
  }

  /** Reads and drops `n` bytes. */
  async skip(n: number): Promise<void> {
    while (this.buffered.length < n) await this.more();
    this.buffered = this.buffered.subarray(n);
  }

  /** Stops reading; returns what was read past the last answer (the start of the tunnel's data). */
  release(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    // Left flowing: the relay sends nothing before the agent's first bytes, and http/TLS attach their readers first.
    return this.buffered;
  }
}

export function parseHead(text: string): ProxyResponse {
  const [statusLine, ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) throw new ProxyProtocolError(`the proxy answered CONNECT with something that is not HTTP (${JSON.stringify(statusLine.slice(0, 60))})`);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const connection = [...(headers.get('connection') ?? []), ...(headers.get('proxy-connection') ?? [])].join(',').toLowerCase();
  const keepAlive = m[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
  return { status: Number(m[2]), statusText: (m[3] ?? '').slice(0, 100), headers, keepAlive };
}

/** The body length of a refusal, when it can be skipped to reuse the connection; undefined when it cannot. */
export function bodyLength(res: ProxyResponse): number | undefined {
  if (res.headers.has('transfer-encoding')) return undefined;
  const values = res.headers.get('content-length');
  if (!values) return 0;
  const n = Number(values[0]);
  return Number.isSafeInteger(n) && n >= 0 && n <= MAX_BODY && values.every((v) => v === values[0]) ? n : undefined;
}

/** The auth schemes a Proxy-Authenticate header list offers ("NTLM", "Negotiate", "Basic"), in order. */
export function offeredSchemes(res: ProxyResponse): string[] {
  const schemes: string[] = [];
  for (const value of res.headers.get('proxy-authenticate') ?? []) {
    // One header may list several challenges: `Basic realm="x", NTLM`. A scheme is a token not followed by "=".
    for (const m of value.matchAll(/(?:^|,)\s*([A-Za-z][\w-]*)(?=\s|,|$)(?!\s*=)/g)) {
      const scheme = m[1].slice(0, 30);
      if (!schemes.some((s) => s.toLowerCase() === scheme.toLowerCase())) schemes.push(scheme);
    }
  }
  return schemes;
}

/** The `NTLM <token>` challenge in Proxy-Authenticate, if the proxy sent one. */
export function ntlmChallenge(res: ProxyResponse): string | undefined {
  return (res.headers.get('proxy-authenticate') ?? []).map((v) => v.trim()).find((v) => /^NTLM\s+\S+/i.test(v));
}
