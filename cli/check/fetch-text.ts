/**
 * The check's HTTP client: one GET, `Accept: application/xml`, redirects not
 * followed, a time limit on the whole exchange, and the path sent exactly as
 * written (no URL normalisation: `%D0%91` stays `%D0%91`, `[ID]` stays `[ID]`).
 */
import http from 'node:http';
import https from 'node:https';
import { SOFTWARE_VERSION } from '../../src/protocol.js';
import { displayUrl, splitHttpUrl } from './display.js';
import type { FetchText, FetchedText } from './types.js';

export const DEFAULT_TIMEOUT_MS = 15_000;
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** A GET that got no (complete) answer; `reason` is for people ("connection refused"). */
export class FetchTextError extends Error {
  readonly url: string;
  readonly reason: string;

  constructor(url: string, reason: string) {
    super(`GET ${displayUrl(url)} failed: ${reason}`);
    this.name = 'FetchTextError';
    this.url = url;
    this.reason = reason;
  }
}

const TLS_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH)/;

/** A Node network error in plain words. */
export function describeNetworkError(err: unknown, host: string): string {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused by ${host} (nothing listens there, or a firewall rejects it)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found: the DNS lookup of ${host} failed`;
    case 'ECONNRESET':
      return `connection reset by ${host} before a complete answer`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${host} is unreachable from here (no route)`;
    case 'ETIMEDOUT':
      return `connecting to ${host} timed out`;
    case 'ERR_UNESCAPED_CHARACTERS':
    case 'ERR_INVALID_CHAR':
      return 'the URL holds characters that must be percent-encoded (spaces, control characters)';
    default:
      if (TLS_CODES.test(code)) {
        return `TLS failed (${code}: ${e.message}); if ${host} uses a certificate from an internal CA, run with NODE_EXTRA_CA_CERTS=<ca.pem>`;
      }
      return code ? `${code}: ${e.message}` : String(e?.message ?? err);
  }
}

export interface FetchTextOptions {
  timeoutMs?: number;
  maxBytes?: number;
}

export function createFetchText(options: FetchTextOptions = {}): FetchText {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  return (url) =>
    new Promise<FetchedText>((resolve, reject) => {
      const u = splitHttpUrl(url);
      if (!u) {
        reject(new FetchTextError(url, 'not an absolute http:// or https:// URL'));
        return;
      }
      const parsed = new URL(`${u.origin}/`);
      const host = parsed.host;
      const started = performance.now();
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new FetchTextError(url, reason));
      };
      const lib = parsed.protocol === 'https:' ? https : http;
      let req: http.ClientRequest;
      try {
        req = lib.request({
          protocol: parsed.protocol,
          hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
          port: parsed.port || undefined,
          path: u.rest,
          method: 'GET',
          agent: false,
          headers: { accept: 'application/xml', 'user-agent': `${SOFTWARE_VERSION} check` },
        });
      } catch (err) {
        reject(new FetchTextError(url, describeNetworkError(err, host)));
        return;
      }
      const timer = setTimeout(() => fail(`no complete answer within ${timeoutMs / 1000} s`), timeoutMs);
      req.on('error', (err) => fail(describeNetworkError(err, host)));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) fail(`the answer is larger than ${maxBytes} bytes; a Client Tracker message is a few KiB`);
          else chunks.push(chunk);
        });
        res.on('error', (err) => fail(describeNetworkError(err, host)));
        res.on('aborted', () => fail(`${host} closed the connection before the end of the answer`));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            ms: Math.round(performance.now() - started),
          });
        });
      });
      req.end();
    });
}

export const fetchText: FetchText = createFetchText();
