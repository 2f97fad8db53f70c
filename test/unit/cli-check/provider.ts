/**
 * A Client Tracker provider on a loopback port, for the check tests: each
 * route is a pathname; every request's raw URL (path and query as received)
 * is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse, origin: string) => void;

export interface Provider {
  origin: string;
  /** Raw request URLs, in order. */
  requests: string[];
  routes: Map<string, Handler>;
  close(): Promise<void>;
}

export const NS = 'http://clienttracker.cioc.ca/schema/';

export function sendXml(res: ServerResponse, body: string, status = 200, contentType = 'application/xml; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface RegistrationUrls {
  launchURL?: string;
  resourceInfoURL?: string;
  resourceSummaryURL?: string;
  resourceEmailURL?: string;
  resourceTaxonomyInfoURL?: string;
}

export function registrationXml(urls: RegistrationUrls, options: { ns?: string; name?: string } = {}): string {
  const el = (name: keyof RegistrationUrls): string =>
    urls[name] === undefined ? '' : `    <${name}>${escapeXml(urls[name] as string)}</${name}>\n`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<response xmlns="${options.ns ?? NS}">\n` +
    '  <resourceType>\n' +
    `    <name>${escapeXml(options.name ?? 'Toronto Community Services')}</name>\n` +
    el('launchURL') +
    el('resourceInfoURL') +
    el('resourceSummaryURL') +
    el('resourceEmailURL') +
    el('resourceTaxonomyInfoURL') +
    '  </resourceType>\n' +
    '</response>\n'
  );
}

/** The registration of the docs/client-tracker-protocol.md example (section 1), with every URL on `base`. */
export function fullUrls(base: string): Required<RegistrationUrls> {
  return {
    launchURL: `${base}/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[KEY]`,
    resourceInfoURL: `${base}/ct/ctfetch.asp?num=[ID]`,
    resourceSummaryURL: `${base}/printlist.asp?IDList=[IDS]`,
    resourceEmailURL: `${base}/recordlist?IDList=[IDS]`,
    resourceTaxonomyInfoURL: `${base}/ct/ctfetchtax.asp?IDList=[IDS]`,
  };
}

export function resourceInfoXml(id: string, name = 'Food Bank', url = 'http://intranet.example/record/1', ns = NS): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<response xmlns="${ns}">\n` +
    `  <resourceInfo>\n    <id>${escapeXml(id)}</id>\n    <name>${escapeXml(name)}</name>\n    <url>${escapeXml(url)}</url>\n  </resourceInfo>\n` +
    '</response>\n'
  );
}

/** The id the provider was asked for: the `num` query value, percent-decoded. */
export function requestedId(req: IncomingMessage): string {
  const raw = /[?&]num=([^&]*)/.exec(req.url ?? '')?.[1] ?? '';
  return decodeURIComponent(raw);
}

export async function startProvider(routes: Record<string, Handler> = {}): Promise<Provider> {
  const map = new Map(Object.entries(routes));
  const requests: string[] = [];
  let origin = '';
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const path = (req.url ?? '/').replace(/\?[\s\S]*$/, '');
    const handler = map.get(path);
    if (handler) handler(req, res, origin);
    else sendXml(res, `<html><body>no route ${escapeXml(path)}</body></html>`, 404, 'text/html');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requests,
    routes: map,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Captured {
  stdout: string;
  stderr: string;
  io: { stdout: (t: string) => void; stderr: (t: string) => void };
}

export function capture(): Captured {
  const c: Captured = {
    stdout: '',
    stderr: '',
    io: {
      stdout: (t) => {
        c.stdout += t;
      },
      stderr: (t) => {
        c.stderr += t;
      },
    },
  };
  return c;
}
