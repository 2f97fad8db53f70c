/**
 * A small Client Tracker on loopback: the RPC endpoint providers POST to,
 * and a client that GETs a provider's registration and fetch URLs the way
 * Client Tracker's servers do.
 *
 *   POST <url>is_in_request    yes, with the ids pushed so far for (login, ctid)
 *   POST <url>add_resource     adds the item to (login, ctid)'s Request: success + ids
 *   POST <url>remove_resource  removes it: success + ids
 *
 * Each body is checked with the Client Tracker schemas (validateXml); an
 * invalid one gets `<response><error>…</error></response>` and changes
 * nothing. `<url>` is `http://127.0.0.1:<port>/rpc/`.
 *
 * register(url) GETs a registration and remembers its URLs; fetch(url, id)
 * substitutes encodeURIComponent(id) for every `[ID]` and GETs the result,
 * sending the path exactly as built (no normalisation).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { createFetchText } from '../check/fetch-text.js';
import { formatXmlIssues, XML_CONTENT_TYPE, type MessageKind } from '../../src/xml/kinds.js';
import {
  buildErrorResponse,
  buildIsInResponse,
  buildPushResourceResponse,
  parseIsInRequest,
  parsePushResource,
  parseRegistration,
  parseResourceInfo,
  type RegistrationResponse,
  type ResourceInfoResponse,
  type ResourceType,
} from '../../src/xml/messages.js';
import { validateXml, type ValidationResult } from '../../src/xml/validate.js';
import { listenOnLoopback } from './listen.js';

export interface CtSimulatorOptions {
  /** Port to listen on (loopback only); 0 or absent: a free port. */
  port?: number;
  /** Answer isInRequest with `<no/>` (the user has no current Request). Default false: `<yes>`. */
  noRequest?: boolean;
  /** Time allowed for a GET to a provider, ms (default 15 s). */
  fetchTimeoutMs?: number;
}

/** One RPC message Client Tracker received. */
export interface CtReceived {
  method: string;
  /** Path as received, e.g. /rpc/add_resource */
  path: string;
  /** The exact bytes received. */
  body: Buffer;
  headers: IncomingHttpHeaders;
  /** Whether the body was a valid message for its path. */
  valid: boolean;
  /** HTTP status and the exact bytes answered. */
  status: number;
  answer: Buffer;
}

/** A GET made like Client Tracker's servers make it. */
export interface CtGet<T> {
  /** The URL requested (placeholders substituted). */
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  /** The exact bytes answered. */
  raw: Buffer;
  /** raw as UTF-8 text. */
  text: string;
  /** Schema check of the answer. */
  validation: ValidationResult;
  /** The answer parsed, unless it could not be (then parseError says why). */
  parsed?: T;
  parseError?: string;
}

export interface CtSimulator {
  /** The RPC base URL a provider (or a relay's clientTracker.rpcUrl) uses, ending with `/`. */
  url: string;
  port: number;
  /** RPC messages received, oldest first. */
  received: CtReceived[];
  /** The ids in (login, ctid)'s current Request. */
  idsFor(login: string, ctid: string): string[];
  /** The registration stored by the last successful register(). */
  registration: ResourceType | undefined;
  /** GET a registration URL, validate and parse it; a registration answer is stored. */
  register(registrationUrl: string): Promise<CtGet<RegistrationResponse>>;
  /** Substitute encodeURIComponent(id) for `[ID]` in resourceInfoURL (default: the stored one) and GET it. */
  fetch(resourceInfoURL: string | undefined, id: string): Promise<CtGet<ResourceInfoResponse>>;
  /** Substitute the encoded, comma-joined ids for `[IDS]` in resourceTaxonomyInfoURL (default: the stored one) and GET it. */
  fetchTaxonomy(resourceTaxonomyInfoURL: string | undefined, ids: string[]): Promise<CtGet<ResourceInfoResponse>>;
  close(): Promise<void>;
}

const MESSAGES: Record<string, { kind: MessageKind; root: string }> = {
  '/rpc/is_in_request': { kind: 'isInRequest', root: 'isInRequest' },
  '/rpc/add_resource': { kind: 'pushResource', root: 'pushResource' },
  '/rpc/remove_resource': { kind: 'pushResource', root: 'pushResourceRemove' },
};

const MAX_BODY = 1024 * 1024;

export async function startCtSimulator(options: CtSimulatorOptions = {}): Promise<CtSimulator> {
  const received: CtReceived[] = [];
  const requests = new Map<string, string[]>();
  const requestKey = (login: string, ctid: string): string => JSON.stringify([login, ctid]);
  const idsOf = (login: string, ctid: string): string[] => {
    const key = requestKey(login, ctid);
    let ids = requests.get(key);
    if (!ids) requests.set(key, (ids = []));
    return ids;
  };
  const getText = createFetchText(options.fetchTimeoutMs === undefined ? {} : { timeoutMs: options.fetchTimeoutMs });

  /** Answer for a message body: [status, xml, valid]. */
  const handle = (path: string, body: Buffer): [number, string, boolean] => {
    const message = MESSAGES[path];
    if (!message) return [404, buildErrorResponse(`Client Tracker has no RPC ${path}: use is_in_request, add_resource or remove_resource`), false];
    const check = validateXml(message.kind, body);
    if (!check.ok) {
      return [200, buildErrorResponse(`The ${message.root} message is not valid: ${formatXmlIssues(check.errors.slice(0, 3)).replace(/\n/g, '; ')}`), false];
    }
    if (message.kind === 'isInRequest') {
      const { login, ctid } = parseIsInRequest(body);
      if (options.noRequest) return [200, buildIsInResponse({ kind: 'no' }), true];
      return [200, buildIsInResponse({ kind: 'yes', ids: [...idsOf(login, ctid)] }), true];
    }
    const push = parsePushResource(body);
    if (push.kind !== message.root) {
      return [200, buildErrorResponse(`${path} takes a <${message.root}> message, not <${push.kind}>`), false];
    }
    const ids = idsOf(push.login, push.ctid);
    const at = ids.indexOf(push.resourceItem.id);
    if (push.kind === 'pushResource' && at === -1) ids.push(push.resourceItem.id);
    if (push.kind === 'pushResourceRemove' && at !== -1) ids.splice(at, 1);
    return [200, buildPushResourceResponse({ kind: 'success', ids: [...ids] }), true];
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let status: number;
      let xml: string;
      let valid = false;
      if (req.method !== 'POST') {
        status = 405;
        xml = buildErrorResponse(`Client Tracker RPCs take POST, not ${String(req.method).slice(0, 10)}`);
      } else if (size > MAX_BODY) {
        status = 413;
        xml = buildErrorResponse(`The message is larger than ${MAX_BODY} bytes`);
      } else {
        try {
          [status, xml, valid] = handle(path, body);
        } catch (err) {
          status = 200;
          xml = buildErrorResponse(`The message could not be read: ${(err as Error).message}`);
        }
      }
      const answer = Buffer.from(xml, 'utf8');
      received.push({ method: req.method ?? '', path, body, headers: req.headers, valid, status, answer });
      res.writeHead(status, { 'content-type': XML_CONTENT_TYPE, 'content-length': answer.length });
      res.end(answer);
    });
  });

  const port = await listenOnLoopback(server, options.port);

  const get = async <T>(url: string, kind: MessageKind, parse: (b: Buffer) => T): Promise<CtGet<T>> => {
    const r = await getText(url);
    const out: CtGet<T> = {
      url,
      status: r.status,
      headers: r.headers,
      raw: r.body,
      text: r.body.toString('utf8'),
      validation: validateXml(kind, r.body),
    };
    try {
      out.parsed = parse(r.body);
    } catch (err) {
      out.parseError = (err as Error).message;
    }
    return out;
  };

  const sim: CtSimulator = {
    url: `http://127.0.0.1:${port}/rpc/`,
    port,
    received,
    idsFor: (login, ctid) => [...(requests.get(requestKey(login, ctid)) ?? [])],
    registration: undefined,
    register: async (registrationUrl) => {
      const r = await get(registrationUrl, 'registration', parseRegistration);
      if (r.parsed?.kind === 'registration') sim.registration = r.parsed.resourceType;
      return r;
    },
    fetch: (resourceInfoURL, id) => {
      const template = resourceInfoURL ?? sim.registration?.resourceInfoURL;
      if (!template) return Promise.reject(new Error('no resourceInfoURL: register() a provider first, or pass the URL'));
      return get(template.split('[ID]').join(encodeURIComponent(id)), 'resourceInfo', parseResourceInfo);
    },
    fetchTaxonomy: (resourceTaxonomyInfoURL, ids) => {
      const template = resourceTaxonomyInfoURL ?? sim.registration?.resourceTaxonomyInfoURL;
      if (!template) return Promise.reject(new Error('no resourceTaxonomyInfoURL: register() a provider that has one first, or pass the URL'));
      return get(template.split('[IDS]').join(ids.map(encodeURIComponent).join(',')), 'resourceInfo', parseResourceInfo);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sim;
}
