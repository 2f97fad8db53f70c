/**
 * The tests' HTTP client: one request, the whole answer. For what it does
 * not cover (timing each answer, reading slowly, 100-continue, raw bytes)
 * a test uses node:http or a raw socket itself.
 */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as UTF-8. */
  readonly text: string;
}

export interface RequestOptions extends http.RequestOptions {
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked, no Content-Length (else Node sets Content-Length). */
  chunked?: boolean;
  /** Instead of `body`: writes the body and ends the request itself (a large upload, paced by 'drain'). */
  write?: (req: http.ClientRequest) => void;
}

/**
 * `opts.method` (default GET) to `url` with `opts.body`; a new connection
 * unless `opts.agent` says otherwise. Rejects on a socket error. `opts.path`
 * replaces the URL's path as it is (`new URL` would resolve `..`).
 */
export function request(url: string | URL, opts: RequestOptions = {}): Promise<Reply> {
  const { body, chunked, write, ...options } = opts;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: all,
          get text() {
            return all.toString('utf8');
          },
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
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

/** The status of a GET of `url`. */
export async function statusOf(url: string | URL, opts: RequestOptions = {}): Promise<number> {
  return (await request(url, opts)).status;
}
