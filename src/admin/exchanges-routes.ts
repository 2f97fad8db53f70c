/**
 * The inspector on the admin listener (src/admin/server.ts routes.extra):
 *
 *   GET  /api/exchanges?tunnel=&status=5xx&code=&requestId=&limit=   recent exchanges, newest first (JSON)
 *   GET  /api/exchanges/<request id>                                 one exchange
 *   GET  /api/exchanges/stream?tunnel=&status=&code=&requestId=      new ones as server-sent events (`ctbridge tail`)
 *   POST /api/exchanges/<request id>/replay                          agent: send the kept request to its target again
 *   GET  /exchanges?...                                              the same for people; /exchanges/<id> one of them
 *
 * Everything shown is already redacted (src/inspect/redact-entry.ts). A
 * replay changes something outside this process, so it takes the checks a
 * state-changing request gets: the `X-Ctbridge-Admin: 1` header (which a
 * cross-site form cannot send) and no cross-site Origin / Sec-Fetch-Site.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { json, send, type AdminRoutes } from './server.js';
import { filterFromQuery, matches, type InspectEntry } from '../inspect/entry.js';
import type { ExchangeRing } from '../inspect/ring.js';
import { exchangePage, exchangesPage } from './exchanges-page.js';
import { crossSiteRefusal } from './guard.js';

export type ReplayAnswer =
  | { ok: true; original: InspectEntry; replay: InspectEntry }
  | { ok: false; status: number; error: string };

export interface InspectRoutesDeps {
  role: 'relay' | 'agent';
  /** The ring, or undefined when `inspect: off`. */
  ring(): ExchangeRing | undefined;
  /** The config file, for messages. */
  file(): string;
  /** Agent: sends a kept request again. */
  replay?(requestId: string): Promise<ReplayAnswer>;
}

/** Live tails at once: each holds a connection and a listener. */
const MAX_TAILS = 32;
const HEARTBEAT_MS = 15_000;

export function inspectRoutes(d: InspectRoutesDeps): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  let tails = 0;
  const off = (res: ServerResponse): void => {
    json(res, 404, { error: `the inspector is off (inspect: off in ${d.file()}); remove that line and reload to keep recent exchanges` });
  };

  const stream = (req: IncomingMessage, res: ServerResponse, ring: ExchangeRing, query: URLSearchParams): void => {
    if (tails >= MAX_TAILS) {
      json(res, 503, { error: `already ${MAX_TAILS} live tails on this admin listener; stop one and try again` });
      return;
    }
    tails++;
    const filter = filterFromQuery(query);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(`: ctbridge ${d.role} exchanges\nretry: 2000\n\n`);
    let dropped = 0;
    // A slow reader loses entries (counted), never grows this process's memory.
    const onEntry = (e: InspectEntry): void => {
      if (!matches(e, filter)) return;
      if (res.writableNeedDrain) {
        dropped++;
        return;
      }
      if (dropped > 0) {
        res.write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
        dropped = 0;
      }
      res.write(`id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    const unsubscribe = ring.subscribe(onEntry);
    const beat = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    beat.unref();
    res.once('close', () => {
      tails--;
      clearInterval(beat);
      unsubscribe();
    });
    req.resume();
  };

  return (req, res, path) => {
    const get = req.method === 'GET' || req.method === 'HEAD';
    const isPage = path === '/exchanges' || path.startsWith('/exchanges/');
    const isApi = path === '/api/exchanges' || path.startsWith('/api/exchanges/');
    if (!isPage && !isApi) return false;
    const ring = d.ring();
    const query = new URL(req.url ?? '/', 'http://admin').searchParams;
    const rest = decodeSegment(path.slice(isPage ? '/exchanges'.length : '/api/exchanges'.length));
    if (rest === undefined) {
      json(res, 400, { error: 'the request id in the path is not valid percent-encoding' });
      return true;
    }

    if (req.method === 'POST' && isApi && rest.endsWith('/replay')) {
      const id = rest.slice(1, -'/replay'.length);
      const refused = crossSiteRefusal(req.headers);
      req.resume();
      if (refused) return json(res, 403, { error: refused }), true;
      if (!d.replay) return json(res, 404, { error: `replay is only on an agent's admin listener: this is the ${d.role}'s` }), true;
      if (!ring) return off(res), true;
      void d.replay(id).then(
        (answer) => (answer.ok ? json(res, 200, answer) : json(res, answer.status, { error: answer.error })),
        (err: unknown) => json(res, 500, { error: `the replay failed: ${err instanceof Error ? err.message : String(err)}` }),
      );
      return true;
    }
    if (!get) {
      json(res, 405, { error: 'GET only (POST /api/exchanges/<request id>/replay on an agent)' });
      return true;
    }
    if (!ring) {
      if (isPage) send(res, 200, 'text/html; charset=utf-8', exchangesPage(d.role, undefined, {}, []));
      else off(res);
      return true;
    }
    if (isApi && rest === '/stream') {
      stream(req, res, ring, query);
      return true;
    }
    if (rest === '' || rest === '/') {
      const filter = filterFromQuery(query);
      const limit = Math.min(Math.max(Number(query.get('limit')) || 100, 1), 1000);
      const entries = ring.list(filter, limit);
      if (isPage) send(res, 200, 'text/html; charset=utf-8', exchangesPage(d.role, ring, filter, entries));
      else json(res, 200, { kept: ring.size, bytes: ring.bytes, maxBytes: ring.maxBytes, entries });
      return true;
    }
    const id = rest.slice(1);
    const entry = ring.get(id);
    if (!entry) {
      if (isPage) send(res, 404, 'text/html; charset=utf-8', exchangePage(d.role, id, undefined));
      else json(res, 404, { error: `no exchange ${id.slice(0, 40)} is kept here (only the last ones are, per tunnel)` });
      return true;
    }
    if (isPage) send(res, 200, 'text/html; charset=utf-8', exchangePage(d.role, id, entry));
    else json(res, 200, entry);
    return true;
  };
}

function decodeSegment(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** `routes` with the inspector's routes added. */
export function withInspector(extra: NonNullable<AdminRoutes['extra']>, routes: AdminRoutes): AdminRoutes {
  return { ...routes, extra };
}
