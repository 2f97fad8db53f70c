/**
 * Load for the e2e tests: callers each sending one request after another
 * over keep-alive connections, every outcome kept, until stopped.
 */
import http from 'node:http';
import { attempt, type Outcome, type RequestOptions } from './http.js';

export interface Load {
  /** Every outcome, in the order they came. */
  results: Outcome[];
  /** Resolves once `n` further outcomes have come (or every caller has finished). */
  more(n: number): Promise<void>;
  /** Stops the callers after their current request; resolves once all have. */
  stop(): Promise<void>;
}

/**
 * `workers` callers sharing one keep-alive agent (a socket each); caller `w`
 * sends `next(w, i)` for i = 0, 1, … until stopped or `maxEach` requests.
 */
export function load(next: (worker: number, i: number) => string | [string, RequestOptions], workers: number, maxEach = 5000): Load {
  const results: Outcome[] = [];
  let stopped = false;
  let finished = false;
  const waiters: { n: number; resolve: () => void }[] = [];
  const wake = (): void => {
    for (const w of waiters.filter((x) => finished || results.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const callers = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; i < maxEach && !stopped; i++) {
      const call = next(w, i);
      const [url, opts] = typeof call === 'string' ? [call, {}] : call;
      results.push(await attempt(url, { ...opts, agent }));
      wake();
    }
  });
  const done = Promise.all(callers).then(() => {
    finished = true;
    wake();
  });
  return {
    results,
    more(n: number): Promise<void> {
      const target = results.length + n;
      return new Promise((resolve) => {
        waiters.push({ n: target, resolve });
        wake();
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      await done;
      agent.destroy();
    },
  };
}

/** The outcomes that are not a complete 200, as "status code" lines: `expect(failures(r)).toEqual([])`. */
export function failures(results: Outcome[]): string[] {
  return results.filter((r) => r.status !== 200 || !r.complete).map((r) => `${r.status} ${r.code ?? ''}`.trim());
}
