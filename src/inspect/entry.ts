/**
 * One exchange as the inspector keeps it (src/inspect/ring.ts) and shows it
 * on the admin listener: already redacted (src/inspect/redact-entry.ts), so
 * whatever is kept can be printed as it is. The request as it came in, for
 * a replay on the agent, is kept apart from it (ReplaySource) and is never
 * shown.
 */

/** A body as kept: its first bytes as text (redacted), or why not. */
export interface KeptBody {
  /** The body's size in bytes (as far as it went through). */
  bytes: number;
  /** The first `inspect.bodies` bytes as text, secret fields redacted. */
  text?: string;
  /** Only the start of the body is kept. */
  truncated?: boolean;
  /** Why there is no text: "binary (image/png)", "compressed (gzip)". */
  note?: string;
}

/** What a Client Tracker message was, on a clienttracker tunnel or for egress. */
export interface CtSummary {
  /** registration, fetch, isInRequest, pushResource, pushResourceRemove, error, or what else the answer was. */
  message: string;
  /** The item id of a fetch, the ctid of an egress message. */
  id?: string;
  /** valid, invalid, not checked (validation: off), or not XML. */
  validation: 'valid' | 'invalid' | 'not checked' | 'not xml';
  /** The first problem: "line 4, element <id>: ..." (an element named as a secret shows no message). */
  firstError?: string;
  /** The relay rewrote the registration's URLs to the public URL. */
  rewritten?: boolean;
}

/** What the kept (raw) and shown (redacted) forms of an exchange have alike. */
interface ExchangeFacts {
  side: 'relay' | 'agent';
  requestId: string;
  tunnel: string;
  /** http, upgrade (WebSocket), egress (provider → Client Tracker). */
  kind: 'http' | 'upgrade' | 'egress';
  method: string;
  /** HTTP status the caller got (0: none). */
  status: number;
  durationMs: number;
  /** Agent: ms until the target's response head arrived. */
  firstByteMs?: number;
  /** Request body bytes received. */
  bytesIn: number;
  /** Response body bytes sent. */
  bytesOut: number;
  code?: string;
  /** Relay: the agent (and relay node) that served it; agent: the target origin. */
  servedBy?: string;
  ct?: CtSummary;
  /** Agent: the whole request was kept, so it can be sent to the target again. */
  replayable?: boolean;
  /** A replay: the request id it repeated. */
  replayOf?: string;
}

export interface InspectEntry extends ExchangeFacts {
  /** Order of recording in this process; the tail resumes from it. */
  seq: number;
  /** When the exchange started (ISO). */
  at: string;
  /** Path and query in the tunnel, secret query values redacted. */
  path: string;
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  requestBody?: KeptBody;
  responseBody?: KeptBody;
}

/** A body's first bytes as they passed, turned into a KeptBody (redacted) only when shown. */
export interface RawBody {
  head: Buffer;
  total: number;
  contentType: string | undefined;
  contentEncoding: string | undefined;
}

/**
 * An exchange as the data path hands it over: references to what is there
 * anyway (the header lists as received, the path as received), nothing
 * copied or redacted yet. The ring keeps it so, and turns it into a
 * redacted InspectEntry (toEntry in redact-entry.ts) only when someone
 * looks: recording stays cheap, and nothing unredacted ever leaves the ring.
 */
export interface RawExchange extends ExchangeFacts {
  /** Date.now() when it started. */
  startedAt: number;
  /** Path and query as received (redacted when shown). */
  target: string;
  /** Flat name/value lists as received. */
  requestHeaders: readonly string[];
  responseHeaders: readonly string[];
  requestBody?: RawBody;
  responseBody?: RawBody;
}

/** The request as it came in (unredacted), for a replay; never shown, never serialised. */
export interface ReplaySource {
  method: string;
  /** Path and query in the tunnel, as received. */
  target: string;
  /** Flat name/value list, as received from the relay. */
  headers: readonly string[];
  body: Buffer;
}

/** Filters of GET /api/exchanges, the page and `ctbridge tail`. */
export interface EntryFilter {
  tunnel?: string;
  /** `5xx`, `4xx`, ..., or one status such as `502`. */
  status?: string;
  code?: string;
  requestId?: string;
}

/** Whether `e` passes `f`. */
export function matches(e: Pick<InspectEntry, 'tunnel' | 'code' | 'requestId' | 'status'>, f: EntryFilter): boolean {
  if (f.tunnel && e.tunnel !== f.tunnel) return false;
  if (f.code && e.code !== f.code) return false;
  if (f.requestId && e.requestId !== f.requestId) return false;
  if (f.status) {
    const s = f.status.toLowerCase();
    if (/^[1-5]xx$/.test(s)) {
      if (Math.floor(e.status / 100) !== Number(s[0])) return false;
    } else if (String(e.status) !== s) return false;
  }
  return true;
}

/** A filter from query parameters (unknown ones ignored; values bounded). */
export function filterFromQuery(q: URLSearchParams): EntryFilter {
  const f: EntryFilter = {};
  for (const k of ['tunnel', 'status', 'code', 'requestId'] as const) {
    const v = q.get(k)?.trim();
    if (v) f[k] = v.slice(0, 100);
  }
  return f;
}
