/**
 * Loopback fixtures for the clienttracker tests: a log capture, a fake
 * provider / Client Tracker server (the HTTP client is test/helpers/http.ts).
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

/** The text inside <error>…</error>, entities decoded. */
export function errorTextOf(xml: string): string | undefined {
  const m = /<error>([\s\S]*?)<\/error>/.exec(xml);
  return m?.[1]?.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
