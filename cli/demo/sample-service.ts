/**
 * The demo's stand-in for an intranet web service: echoes what it receives
 * (so you can see what the tunnel delivered), on loopback only.
 */
import http from 'node:http';
import { listenOnLoopback } from './listen.js';

export interface SampleService {
  url: string;
  close(): Promise<void>;
}

export async function startSampleService(): Promise<SampleService> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify(
        {
          service: 'ctbridge demo intranet service',
          method: req.method,
          url: req.url,
          host: req.headers.host,
          forwardedFor: req.headers['x-forwarded-for'],
          forwardedHost: req.headers['x-forwarded-host'],
          requestId: req.headers['x-ctbridge-request-id'],
          bodyBytes: Buffer.concat(chunks).length,
        },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(`${body}\n`);
    });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
