/**
 * A sample Client Tracker Resource Type (a "provider") on loopback, modelled
 * on the CIOC provider described in docs/client-tracker-protocol.md: registration, fetch,
 * taxonomy fetch and launch pages, the field's caller-address check, and a
 * client for the provider → Client Tracker messages (isInRequest,
 * pushResource, pushResourceRemove) sent to its configured "CT RPC URL"
 * (normally the ctbridge agent's egress listener).
 *
 *   GET  /ct/ctregister.asp                  registration (URLs at its own origin)
 *   GET  /ct/ctfetch.asp?num=<id>            one item, for any id ("missing" → error)
 *   GET  /ct/ctfetchtax.asp?IDList=<a,b,…>   taxonomy terms of the items
 *   GET  /ct/ctlaunch.asp?ctid=&login=&key=  a user's launch: remembers the three values
 *   GET  /record/<id>, /printlist.asp, /recordlist   small HTML pages (browser URLs)
 *
 * Access control as in the field: registration and fetch answer only when the
 * direct caller is in `ctNetworks`, or is loopback; a loopback caller (an
 * agent on this host) is judged by the LAST X-Forwarded-For entry instead,
 * which must be in `ctNetworks`. Anything else gets HTTP 403 and
 * `<response><error>Access denied for <addr></error></response>`.
 *
 * The CT `key` is a credential: it is never printed, and launch requests are
 * recorded with it redacted.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { CidrList } from '../../src/config/units.js';
import { SOFTWARE_VERSION } from '../../src/protocol.js';
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, XML_CONTENT_TYPE } from '../../src/xml/kinds.js';
import {
  buildErrorResponse,
  buildIsInRequest,
  buildPushResource,
  buildRegistration,
  buildResourceInfo,
  parseIsInResponse,
  parsePushResourceResponse,
  type CtCredentials,
  type IsInResponse,
  type PushResourceResponse,
  type ResourceType,
  type TaxonomyEntry,
} from '../../src/xml/messages.js';
import { listenOnLoopback } from './listen.js';

export interface SampleProviderOptions {
  /** Port to listen on (loopback only); 0 or absent: a free port. */
  port?: number;
  /** CIDRs of Client Tracker's servers (the field's "CT networks"). Default ['127.0.0.1/32'], so the demo works. */
  ctNetworks?: string[];
  /**
   * The provider's "CT RPC URL": where isInRequest / pushResource go, e.g.
   * the agent egress `http://127.0.0.1:8181/t/cioc/`. A trailing `/` is added
   * if missing.
   */
  rpcBase?: string;
  /** Name in the registration. Default "Sample Community Services". */
  name?: string;
  /** Put a UTF-8 byte-order mark before the registration's XML declaration (some providers in the field do). */
  bom?: boolean;
  /** Error answers use the https namespace, the quirk one provider in the field has in its error branch. */
  namespaceQuirk?: boolean;
  /** Hold every registration/fetch answer this long (timeout tests). */
  delayMs?: number;
  /** The launch values used by the RPC helpers until a launch (GET /ct/ctlaunch.asp) replaces them. */
  credentials?: CtCredentials;
  /** Time allowed for an RPC answer, ms (default 30 s). */
  rpcTimeoutMs?: number;
}

/** One request the provider received. */
export interface ProviderRequest {
  method: string;
  /** Path and query as received (for a launch, with the key redacted). */
  url: string;
  path: string;
  /** The direct caller's address. */
  remoteAddress: string;
  headers: IncomingHttpHeaders;
  /** The address the access check judged (direct caller, or the last X-Forwarded-For entry). */
  caller: string;
  /** Whether the access check let the request through (true for pages without a check). */
  allowed: boolean;
  /** For /ct/ctfetch.asp: the id exactly as decoded from the query (`num`). */
  id?: string;
  /** For /ct/ctfetchtax.asp: the ids of `IDList`. */
  ids?: string[];
  /** HTTP status and the exact bytes answered (set once answered). */
  status?: number;
  answer?: Buffer;
}

/** Which Client Tracker RPC to call (appended to the RPC base URL). */
export type RpcMessage = 'is_in_request' | 'add_resource' | 'remove_resource';

/** What came back from a message to Client Tracker. */
export interface RpcResult<T> {
  /** The URL POSTed to. */
  url: string;
  /** The exact bytes sent. */
  sent: Buffer;
  status: number;
  headers: IncomingHttpHeaders;
  /** The exact bytes answered. */
  body: Buffer;
  /** The answer parsed, when it is the expected message (or an error response). */
  answer?: T;
  /** Why the answer could not be parsed. */
  parseError?: string;
}

export interface PushItem {
  id: string;
  /** Default "Record <id>". */
  name?: string;
  /** Default the item's page on this provider. */
  url?: string;
}

export interface SampleProvider {
  /** Origin, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** The registration URL to give Client Tracker (or a relay tunnel in front of it). */
  registrationUrl: string;
  /** Every request, oldest first. */
  received: ProviderRequest[];
  /** The registration this provider serves. */
  resourceType: ResourceType;
  /** Values the RPC helpers use: the last launch's, or the configured ones. */
  credentials: CtCredentials;
  /** Hold registration/fetch answers this long from now on (0: answer at once). */
  setDelay(ms: number): void;
  /** Switch the https-namespace quirk in error answers on or off. */
  setNamespaceQuirk(on: boolean): void;
  /** Change the RPC base URL. */
  setRpcBase(url: string): void;
  /** pushResource → `<rpc>add_resource`. */
  pushResource(item: PushItem, credentials?: CtCredentials): Promise<RpcResult<PushResourceResponse>>;
  /** pushResourceRemove → `<rpc>remove_resource`. */
  removeResource(id: string, credentials?: CtCredentials): Promise<RpcResult<PushResourceResponse>>;
  /** isInRequest → `<rpc>is_in_request`. */
  isInRequest(credentials?: CtCredentials): Promise<RpcResult<IsInResponse>>;
  /** POST any body to `<rpc><message>` (tests: invalid messages); the answer is not parsed. */
  postRaw(message: RpcMessage | string, body: string | Buffer, headers?: Record<string, string>): Promise<RpcResult<never>>;
  close(): Promise<void>;
}

const TAXONOMY: readonly TaxonomyEntry[] = [
  { code: 'BD-1800', term: 'Food Banks' },
  { code: 'BH-1800.8500', term: 'Shelters' },
  { code: 'LR-8000', term: 'Support Groups' },
  { code: 'PH-6200', term: 'Mental Health Counselling' },
];

const DEFAULT_RPC_TIMEOUT_MS = 30_000;
const MAX_ID_CHARS = 50;

function isLoopback(ip: string): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}

function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

function lastForwardedFor(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const entries = (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const last = entries.at(-1);
  return last === undefined ? undefined : normalizeIp(last.replace(/^\[([^\]]+)\](?::\d+)?$/, '$1'));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function startSampleProvider(options: SampleProviderOptions = {}): Promise<SampleProvider> {
  const ctNetworks = new CidrList(options.ctNetworks ?? ['127.0.0.1/32']);
  const received: ProviderRequest[] = [];
  let delayMs = options.delayMs ?? 0;
  let quirk = options.namespaceQuirk ?? false;
  let rpcBase = options.rpcBase;
  const rpcTimeoutMs = options.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  let origin = '';
  let resourceType: ResourceType;
  const provider = {} as SampleProvider;
  provider.credentials = options.credentials ?? { login: 'jsmith', key: `key-${randomBytes(12).toString('hex')}`, ctid: '42' };

  const errorXml = (text: string): string => {
    const xml = buildErrorResponse(text);
    return quirk ? xml.replace(`xmlns="${CT_NAMESPACE}"`, `xmlns="${CT_NAMESPACE_HTTPS_QUIRK}"`) : xml;
  };

  /** Who the field's check judges: the direct caller, or for a loopback caller the last X-Forwarded-For entry. */
  const judge = (req: http.IncomingMessage): { caller: string; allowed: boolean } => {
    const direct = normalizeIp(req.socket.remoteAddress ?? '');
    if (isLoopback(direct)) {
      const forwarded = lastForwardedFor(req.headers['x-forwarded-for']);
      if (forwarded === undefined) return { caller: direct, allowed: true };
      return { caller: forwarded, allowed: ctNetworks.contains(forwarded) };
    }
    return { caller: direct, allowed: ctNetworks.contains(direct) };
  };

  const itemUrl = (id: string): string => `${origin}/record/${encodeURIComponent(id)}`;

  const fetchAnswer = (id: string | null): string => {
    if (id === null || id === '') return errorXml('No record ID was given: the URL needs ?num=<ID>');
    if ([...id].length > MAX_ID_CHARS) return errorXml(`No record with ID ${id}: record IDs are at most ${MAX_ID_CHARS} characters`);
    if (id === 'missing') return errorXml(`No record with ID ${id}`);
    return buildResourceInfo({ kind: 'resourceInfo', resourceInfo: { id, name: `Record ${id}`, url: itemUrl(id) } });
  };

  const taxonomyAnswer = (ids: string[]): string => {
    if (ids.length === 0) return errorXml('No record IDs were given: the URL needs ?IDList=<ID>,<ID>');
    const entries: TaxonomyEntry[] = [];
    for (const [i, id] of ids.entries()) {
      if (id === 'missing') return errorXml(`No record with ID ${id}`);
      const entry = TAXONOMY[i % TAXONOMY.length] as TaxonomyEntry;
      if (!entries.some((e) => e.code === entry.code)) entries.push(entry);
    }
    return buildResourceInfo({ kind: 'taxonomy', entries });
  };

  const server = http.createServer((req, res) => {
    const rawUrl = req.url ?? '/';
    const parsed = new URL(rawUrl, 'http://provider.invalid');
    const path = parsed.pathname;
    const record: ProviderRequest = {
      method: req.method ?? '',
      url: rawUrl,
      path,
      remoteAddress: normalizeIp(req.socket.remoteAddress ?? ''),
      headers: req.headers,
      caller: normalizeIp(req.socket.remoteAddress ?? ''),
      allowed: true,
    };
    received.push(record);
    req.resume();

    const answer = (status: number, contentType: string, body: string | Buffer): void => {
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      record.status = status;
      record.answer = bytes;
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': contentType, 'content-length': bytes.length, 'cache-control': 'no-store' });
      res.end(bytes);
    };
    const later = (fn: () => void): void => {
      if (delayMs <= 0) return fn();
      const timer = setTimeout(fn, delayMs);
      res.once('close', () => clearTimeout(timer));
    };

    if (path.startsWith('/ct/') && path !== '/ct/ctlaunch.asp') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        answer(405, XML_CONTENT_TYPE, errorXml(`${path} answers GET only`));
        return;
      }
      const verdict = judge(req);
      record.caller = verdict.caller;
      record.allowed = verdict.allowed;
      if (path === '/ct/ctfetch.asp') record.id = parsed.searchParams.get('num') ?? undefined;
      if (path === '/ct/ctfetchtax.asp') record.ids = (parsed.searchParams.get('IDList') ?? '').split(',').filter((s) => s !== '');
      if (!verdict.allowed) {
        answer(403, XML_CONTENT_TYPE, errorXml(`Access denied for ${verdict.caller}`));
        return;
      }
      later(() => {
        switch (path) {
          case '/ct/ctregister.asp':
            answer(200, XML_CONTENT_TYPE, (options.bom ? '\uFEFF' : '') + buildRegistration({ kind: 'registration', resourceType }));
            return;
          case '/ct/ctfetch.asp':
            answer(200, XML_CONTENT_TYPE, fetchAnswer(parsed.searchParams.get('num')));
            return;
          case '/ct/ctfetchtax.asp':
            answer(200, XML_CONTENT_TYPE, taxonomyAnswer(record.ids ?? []));
            return;
          default:
            answer(404, XML_CONTENT_TYPE, errorXml(`No such page: ${path}`));
        }
      });
      return;
    }

    const html = (title: string, body: string): string =>
      `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>\n`;
    if (path === '/ct/ctlaunch.asp') {
      const ctid = parsed.searchParams.get('ctid');
      const login = parsed.searchParams.get('login');
      const key = parsed.searchParams.get('key');
      if (key !== null) {
        parsed.searchParams.set('key', '[REDACTED]');
        record.url = `${path}${parsed.search}`;
      }
      if (!ctid || !login || !key) {
        answer(400, 'text/html; charset=utf-8', html('Launch failed', '<p>The launch URL needs ctid, login and key.</p>'));
        return;
      }
      provider.credentials = { ctid, login, key };
      answer(200, 'text/html; charset=utf-8', html(`Welcome, ${login}`, `<p>Launched from Client Tracker (ctid ${escapeHtml(ctid)}).</p>`));
      return;
    }
    if (path.startsWith('/record/')) {
      let id = path.slice('/record/'.length);
      try {
        id = decodeURIComponent(id);
      } catch {
        // shown as received
      }
      answer(200, 'text/html; charset=utf-8', html(`Record ${id}`, '<p>A sample resource item.</p>'));
      return;
    }
    if (path === '/printlist.asp' || path === '/recordlist') {
      const ids = (parsed.searchParams.get('IDList') ?? '').split(',').filter(Boolean);
      answer(200, 'text/html; charset=utf-8', html('Records', `<ul>${ids.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`));
      return;
    }
    answer(404, 'text/plain; charset=utf-8', 'not found\n');
  });

  const port = await listenOnLoopback(server, options.port);
  origin = `http://127.0.0.1:${port}`;
  resourceType = {
    name: options.name ?? 'Sample Community Services',
    launchURL: `${origin}/ct/ctlaunch.asp?ctid=[CTID]&login=[LOGIN]&key=[KEY]`,
    resourceInfoURL: `${origin}/ct/ctfetch.asp?num=[ID]`,
    resourceSummaryURL: `${origin}/printlist.asp?IDList=[IDS]`,
    resourceEmailURL: `${origin}/recordlist?IDList=[IDS]`,
    resourceTaxonomyInfoURL: `${origin}/ct/ctfetchtax.asp?IDList=[IDS]`,
  };

  const rpcUrl = (message: string): string => {
    if (!rpcBase) throw new Error('the sample provider has no rpcBase (its Client Tracker RPC URL): pass rpcBase or call setRpcBase()');
    return (rpcBase.endsWith('/') ? rpcBase : `${rpcBase}/`) + message;
  };

  const post = <T>(message: string, body: string | Buffer, parse?: (b: Buffer) => T, extraHeaders: Record<string, string> = {}): Promise<RpcResult<T>> => {
    const url = rpcUrl(message);
    const sent = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(target, {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': XML_CONTENT_TYPE,
          'content-length': sent.length,
          'user-agent': `${SOFTWARE_VERSION} sample-provider`,
          ...extraHeaders,
        },
      });
      req.setTimeout(rpcTimeoutMs, () => req.destroy(new Error(`no answer from ${target.origin} within ${rpcTimeoutMs} ms`)));
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const result: RpcResult<T> = { url, sent, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
          if (parse) {
            try {
              result.answer = parse(result.body);
            } catch (err) {
              result.parseError = (err as Error).message;
            }
          }
          resolve(result);
        });
      });
      req.end(sent);
    });
  };

  Object.assign(provider, {
    url: origin,
    port,
    registrationUrl: `${origin}/ct/ctregister.asp`,
    received,
    resourceType,
    setDelay: (ms: number) => {
      delayMs = ms;
    },
    setNamespaceQuirk: (on: boolean) => {
      quirk = on;
    },
    setRpcBase: (url: string) => {
      rpcBase = url;
    },
    pushResource: (item: PushItem, credentials?: CtCredentials) =>
      post('add_resource', buildPushResource({
        kind: 'pushResource',
        ...(credentials ?? provider.credentials),
        resourceItem: { id: item.id, name: item.name ?? `Record ${item.id}`, url: item.url ?? itemUrl(item.id) },
      }), parsePushResourceResponse),
    removeResource: (id: string, credentials?: CtCredentials) =>
      post('remove_resource', buildPushResource({ kind: 'pushResourceRemove', ...(credentials ?? provider.credentials), resourceItem: { id } }), parsePushResourceResponse),
    isInRequest: (credentials?: CtCredentials) => post('is_in_request', buildIsInRequest(credentials ?? provider.credentials), parseIsInResponse),
    postRaw: (message: string, body: string | Buffer, headers?: Record<string, string>) => post<never>(message, body, undefined, headers),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  } satisfies Omit<SampleProvider, 'credentials'>);
  return provider;
}
