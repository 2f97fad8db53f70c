/**
 * `ctbridge replay <request id>`: asks a running agent to send a request it
 * kept (inspect) to the tunnel's target again, and prints the new answer
 * next to the old one: what a provider developer does after a fix.
 * POST /api/exchanges/<id>/replay on the agent's admin listener, with the
 * `X-Ctbridge-Admin: 1` header that listener requires of changes.
 *
 * Exit codes: 0 replayed (whatever the target answered), 1 refused or
 * unreachable, 2 bad usage or config.
 */
import http from 'node:http';
import type { InspectEntry } from '../src/inspect/entry.js';
import { AdminUnreachable, adminTarget, unexpectedAnswer, type AdminTargetOptions } from './admin-client.js';
import { processOutput, type Output } from './output.js';
import { cell, renderTable } from './status.js';

export interface ReplayOptions extends AdminTargetOptions {
  requestId: string;
  json?: boolean | undefined;
}

function post(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, timeout: timeoutMs, headers: { accept: 'application/json', 'x-ctbridge-admin': '1', 'content-length': 0 } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

/** Before and after, side by side, then each body. */
export function replayText(original: InspectEntry, replay: InspectEntry): string {
  const row = (label: string, f: (e: InspectEntry) => unknown): unknown[] => [label, f(original), f(replay)];
  const table = renderTable(['', `before (${original.requestId})`, `replay (${replay.requestId})`], [
    row('status', (e) => `${e.status}${e.code ? ` ${e.code}` : ''}`),
    row('duration', (e) => `${e.durationMs} ms`),
    row('bytes', (e) => e.bytesOut),
    row('content-type', (e) => e.responseHeaders.find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? ''),
  ]);
  const body = (e: InspectEntry): string => e.responseBody?.text ?? `(${e.responseBody?.note ?? 'body not kept'})`;
  const clean = (t: string): string => t.split('\n').map((l) => cell(l, 2000)).join('\n');
  return `${table}\n\nbefore:\n${clean(body(original))}\n\nreplay:\n${clean(body(replay))}\n`;
}

export async function replayCommand(opts: ReplayOptions, out: Output = processOutput): Promise<number> {
  const target = adminTarget({ ...opts, role: opts.role ?? 'agent' });
  const path = `/api/exchanges/${encodeURIComponent(opts.requestId)}/replay`;
  let answer;
  try {
    answer = await post(new URL(path, `${target.url}/`), 330_000);
  } catch (err) {
    const e = new AdminUnreachable(target, (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : (err as Error).message);
    out.stderr(`ctbridge: ${e.message}.\n${e.advice}\n`);
    return 1;
  }
  let body: { ok?: boolean; error?: string; original?: InspectEntry; replay?: InspectEntry };
  try {
    body = JSON.parse(answer.body) as typeof body;
  } catch {
    out.stderr(`ctbridge: ${unexpectedAnswer(target, path, answer)}\n`);
    return 1;
  }
  if (answer.status !== 200 || !body.ok || !body.original || !body.replay) {
    out.stderr(`ctbridge: replay refused: ${cell(body.error ?? `HTTP ${answer.status}`, 400)}\n`);
    return 1;
  }
  out.stdout(opts.json ? `${JSON.stringify({ original: body.original, replay: body.replay }, null, 2)}\n` : replayText(body.original, body.replay));
  return 0;
}
