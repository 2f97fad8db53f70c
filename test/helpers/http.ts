/**
 * The tests' HTTP client: one request, the whole answer. `request` rejects
 * when something goes wrong; `attempt` never does (a load loop counts a
 * failure as an outcome). For what it does not cover (reading slowly, the
 * head before the body, 100-continue, raw bytes) a test uses node:http or a
 * raw socket itself.
 */
import http from 'node:http';
import https from 'node:https';

export interface Reply {
  /** 0 when no response came (see `error`). */
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as UTF-8. */
  readonly text: string;
  /** The response ended whole (false when it was cut, or none came). */
  complete: boolean;
}

export interface Outcome extends Reply {
  /** The bridge's error code (X-Ctbridge-Error), else the socket error's code. */
  code: string | undefined;
  /** Why it failed: the socket error's message, or 'aborted' for a cut response. */
  error?: string;
  /** Milliseconds from the call to the outcome. */
  ms: number;
  /** Date.now() at the outcome. */
  at: number;
}

export interface RequestOptions extends https.RequestOptions {
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked, no Content-Length (else Node sets Content-Length). */
  chunked?: boolean;
  /** Instead of `body`: writes the body and ends the request itself (a large upload, paced by 'drain'). */
  write?: (req: http.ClientRequest) => void;
  /** `request` resolves with a response cut in the middle (`complete: false`) instead of rejecting. */
  partial?: boolean;
}

/**
 * `opts.method` (default GET) to `url` (http: or https:) with `opts.body`;
 * a new connection unless `opts.agent` says otherwise. Rejects on a socket
 * error, and on a cut response unless `opts.partial`. `opts.path` replaces
 * the URL's path as it is (`new URL` would resolve `..`).
 */
export async function request(url: string | URL, opts: RequestOptions = {}): Promise<Reply> {
  const { outcome, cause } = await exchange(url, opts);
  if (cause && !(opts.partial && outcome.status !== 0)) throw cause;
  return outcome;
}

/** Like `request`, but never rejects: a socket error or a cut response is an outcome too. */
export async function attempt(url: string | URL, opts: RequestOptions = {}): Promise<Outcome> {
  return (await exchange(url, opts)).outcome;
}

/** The status of a GET of `url`. */
export async function statusOf(url: string | URL, opts: RequestOptions = {}): Promise<number> {
  return (await request(url, opts)).status;
}

function exchange(url: string | URL, opts: RequestOptions): Promise<{ outcome: Outcome; cause?: Error }> {
  const { body, chunked, write, partial: _, ...options } = opts;
  const started = performance.now();
  const client = new URL(url).protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let res: http.IncomingMessage | undefined;
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (cause?: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      const all = Buffer.concat(chunks);
      const complete = !cause && res?.complete === true;
      const outcome: Outcome = {
        status: res?.statusCode ?? 0,
        headers: res?.headers ?? {},
        body: all,
        get text() {
          return all.toString('utf8');
        },
        complete,
        code: (res?.headers['x-ctbridge-error'] as string | undefined) ?? cause?.code,
        ...(cause ? { error: cause.message } : {}),
        ms: performance.now() - started,
        at: Date.now(),
      };
      resolve({ outcome, cause });
    };
    const req = client.request(url, { agent: false, ...options }, (r) => {
      res = r;
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => settle());
      r.on('error', settle);
      r.on('close', () => settle(r.complete ? undefined : new Error('aborted')));
    });
    req.on('error', settle);
    if (write) {
      write(req);
    } else if (chunked && body !== undefined) {
      req.write(body);
      req.end();
    } else {
      req.end(body);
    }
  });
}
