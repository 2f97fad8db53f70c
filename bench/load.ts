/**
 * HTTP load: wrk (Debian package) when it is on PATH, autocannon otherwise
 * (BENCH_GENERATOR=autocannon forces it). A run with non-2xx answers or
 * socket errors throws.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import autocannon from 'autocannon';
import { killOnCleanup } from './children.js';

export type Generator = 'wrk' | 'autocannon';

export interface LoadResult {
  /** Completed requests. */
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this one
    }
  }
  return false;
}

export function pickGenerator(): Generator {
  const forced = process.env.BENCH_GENERATOR;
  if (forced === 'wrk' || forced === 'autocannon') return forced;
  if (forced) throw new Error(`BENCH_GENERATOR: expected wrk or autocannon, got ${forced}`);
  return onPath('wrk') ? 'wrk' : 'autocannon';
}

export function runLoad(gen: Generator, url: string, connections: number, seconds: number): Promise<LoadResult> {
  return gen === 'wrk' ? runWrk(url, connections, seconds) : runAutocannon(url, connections, seconds);
}

async function runWrk(url: string, connections: number, seconds: number): Promise<LoadResult> {
  const threads = Math.min(connections, 2);
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', url];
  const out = await new Promise<string>((resolve, reject) => {
    const proc = execFile('wrk', args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrk ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
    killOnCleanup(proc);
  });
  try {
    return parseWrk(out);
  } catch (err) {
    throw new Error(`wrk ${args.join(' ')}: ${(err as Error).message}\nwrk output:\n${out}`);
  }
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A wrk time ("812.00us", "3.10ms", "1.02s", "1.00m") in milliseconds. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`cannot read wrk time '${text}'`);
  return Number(m[1]) * TIME_UNITS[m[2]];
}

export function parseWrk(out: string): LoadResult {
  const non2xx = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out);
  if (non2xx) throw new Error(`${non2xx[1]} non-2xx/3xx responses`);
  const sock = /Socket errors:\s*connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock && sock.slice(1).some((n) => Number(n) > 0)) throw new Error(`socket errors: ${sock[0]}`);
  const total = /(\d+) requests in ([\d.]+(?:us|ms|s|m|h)),/.exec(out);
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(out);
  const p50 = /^\s*50%\s+(\S+)$/m.exec(out);
  const p99 = /^\s*99%\s+(\S+)$/m.exec(out);
  if (!total || !rps || !p50 || !p99) throw new Error('cannot find the request count, Requests/sec or the latency distribution');
  const requests = Number(total[1]);
  if (requests === 0) throw new Error('no request completed');
  return { requests, seconds: wrkMs(total[2]) / 1000, rps: Number(rps[1]), p50Ms: wrkMs(p50[1]), p99Ms: wrkMs(p99[1]) };
}

async function runAutocannon(url: string, connections: number, seconds: number): Promise<LoadResult> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  if (r.non2xx || r.errors || r.timeouts) {
    throw new Error(`autocannon ${url}, ${connections} connections: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  }
  const requests = r.requests.total;
  if (requests === 0) throw new Error(`autocannon ${url}: no request completed`);
  return { requests, seconds: r.duration, rps: requests / r.duration, p50Ms: r.latency.p50, p99Ms: r.latency.p99 };
}
