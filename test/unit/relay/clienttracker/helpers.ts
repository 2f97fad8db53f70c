/**
 * Loopback fixtures for the clienttracker tests: a log capture, a fake
 * provider / Client Tracker server, and a plain HTTP client.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { parseRelayConfig } from '../../../../src/config/relay-config.js';
import type { RelayConfig } from '../../../../src/config/index.js';
import { createLogger, type Logger } from '../../../../src/log.js';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export function captureLog(): { lines: LogLine[]; log: Logger } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'debug', name: 'relay', destination }) };
}

export function relayConfig(extra: Record<string, unknown>): RelayConfig {
  return parseRelayConfig({ auth: { secret: 'test-secret-0123456789abcdef-0123456789' }, ...extra }, 'relay.yaml', {});
}

export interface TestServer {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

export async function listen(handler: http.RequestListener): Promise<TestServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; createConnection?: () => import('node:stream').Duplex } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const { createConnection, ...rest } = options;
    const req = http.request(
      url,
      { method: rest.method ?? 'GET', headers: rest.headers, ...(createConnection ? { createConnection: createConnection as never } : { agent: false }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(rest.body);
  });
}

/** The text inside <error>…</error>, entities decoded. */
export function errorTextOf(xml: string): string | undefined {
  const m = /<error>([\s\S]*?)<\/error>/.exec(xml);
  return m?.[1]?.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
