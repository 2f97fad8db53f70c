/**
 * Bulk transfers (one connection, node's http client, agent: false) and open
 * exchanges (requests whose answer has started but not finished).
 */
import http from 'node:http';

const BLOCK = Buffer.alloc(64 * 1024, 'u');

const elapsedS = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** GET `${base}/download?bytes=N`; MB/s (10^6 bytes per second), after checking the byte count. */
export function download(base: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.get(`${base}/download?bytes=${bytes}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`download from ${base}: HTTP ${res.statusCode}`));
      }
      let got = 0;
      res.on('data', (c: Buffer) => (got += c.length));
      res.on('error', reject);
      res.on('end', () => {
        if (got !== bytes) reject(new Error(`download from ${base}: ${got} bytes instead of ${bytes}`));
        else resolve(bytes / 1e6 / elapsedS(t0));
      });
    });
    req.on('error', reject);
  });
}

/**
 * POST `${base}/upload` with N bytes streamed from one reusable 64 KiB
 * buffer, waiting for 'drain' whenever write() returns false; MB/s until the
 * backend's answer (its byte count) arrives.
 */
export function upload(base: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let answered = false;
    const req = http.request(
      `${base}/upload`,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', 'content-length': bytes } },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`upload to ${base}: HTTP ${res.statusCode}: ${body.slice(0, 500)}`));
          else if (Number(body) !== bytes) reject(new Error(`upload to ${base}: backend read ${body.trim()} bytes instead of ${bytes}`));
          else resolve(bytes / 1e6 / elapsedS(t0));
        });
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err); // after an early answer, a write error is expected; the answer decides
    });
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        if (answered || req.destroyed) return;
        const n = Math.min(BLOCK.length, bytes - sent);
        sent += n;
        if (!req.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

export interface OpenExchanges {
  /** Resolves when every held response has ended (after the backend's /release). */
  ended: Promise<void>;
  destroy(): void;
}

/**
 * Opens `n` concurrent GET `${tunnelBase}/hold` (one connection each), in
 * batches of 100, and resolves once every response's headers have arrived:
 * `n` exchanges are then in flight through relay and agent.
 */
export async function openExchanges(tunnelBase: string, n: number): Promise<OpenExchanges> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const reqs: http.ClientRequest[] = [];
  const ends: Promise<void>[] = [];
  const open = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.get(`${tunnelBase}/hold?i=${i}`, { agent }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`open exchange ${i}: HTTP ${res.statusCode}`));
        }
        ends.push(
          new Promise<void>((done, fail) => {
            res.on('error', fail);
            res.on('end', done);
            res.resume();
          }),
        );
        resolve();
      });
      req.on('error', reject);
      reqs.push(req);
    });
  try {
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => open(i + j)));
    }
  } catch (err) {
    for (const r of reqs) r.destroy();
    throw err;
  }
  return {
    ended: Promise.all(ends).then(() => undefined),
    destroy: () => {
      for (const r of reqs) r.destroy();
      agent.destroy();
    },
  };
}

/** GET `${backendBase}/release`: the backend ends every held response; returns how many. */
export function releaseHeld(backendBase: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(`${backendBase}/release`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(Number(body)));
      })
      .on('error', reject);
  });
}
