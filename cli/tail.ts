/**
 * `ctbridge tail`: the exchanges a running relay or agent handles, as they
 * happen (server-sent events from GET /api/exchanges/stream on its admin
 * listener, filtered there), one line each, or one JSON object a line with
 * --json. Runs until interrupted; exits 1 when the listener cannot be
 * reached or goes away. Every value is made terminal-safe (cell()).
 */
import http from 'node:http';
import type { InspectEntry } from '../src/inspect/entry.js';
import { AdminUnreachable, adminTarget, unexpectedAnswer, whose, type AdminTarget, type AdminTargetOptions } from './admin-client.js';
import { processOutput, type Output } from './output.js';
import { cell } from './status.js';

export interface TailOptions extends AdminTargetOptions {
  tunnel?: string | undefined;
  status?: string | undefined;
  code?: string | undefined;
  requestId?: string | undefined;
  json?: boolean | undefined;
}

/** One entry as a line for people. */
export function tailLine(e: InspectEntry): string {
  const time = e.at.slice(11, 23);
  const ct = e.ct ? `  [${e.ct.message}${e.ct.id ? ` ${e.ct.id}` : ''}: ${e.ct.validation}${e.ct.rewritten ? ', URLs rewritten' : ''}${e.ct.firstError ? `; ${e.ct.firstError}` : ''}]` : '';
  const parts = [
    time, e.side, cell(e.tunnel, 64), cell(e.requestId, 40), `${cell(e.method, 16)} ${cell(e.path, 200)}`,
    String(e.status || '-'), `${e.durationMs}ms`, e.code ? cell(e.code, 40) : '', e.servedBy ? cell(e.servedBy, 120) : '',
  ];
  return `${parts.filter((p) => p !== '').join('  ')}${cell(ct, 400)}`;
}

/** Reads server-sent events from `res`, calling `onData` with each event's data (default event only). */
function readEvents(res: http.IncomingMessage, onData: (data: string, event: string) => void): void {
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    // Bounded: one event is one entry (tens of KiB at most).
    if (buffer.length > 8 * 1024 * 1024) buffer = '';
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        else if (line.startsWith('event:')) event = line.slice(6).trim();
      }
      if (data.length) onData(data.join('\n'), event);
    }
  });
}

export function tailCommand(opts: TailOptions, out: Output = processOutput): Promise<number> {
  const target: AdminTarget = adminTarget(opts);
  const query = new URLSearchParams();
  if (opts.tunnel) query.set('tunnel', opts.tunnel);
  if (opts.status) query.set('status', opts.status);
  if (opts.code) query.set('code', opts.code);
  if (opts.requestId) query.set('requestId', opts.requestId);
  const path = `/api/exchanges/stream${query.size ? `?${query}` : ''}`;
  return new Promise((resolve) => {
    const req = http.request(new URL(path, `${target.url}/`), { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let error: string | undefined;
          try {
            error = (JSON.parse(body) as { error?: string }).error;
          } catch {
            error = undefined;
          }
          out.stderr(`ctbridge: ${error && res.statusCode !== 403 ? cell(error, 400) : unexpectedAnswer(target, path, { status: res.statusCode ?? 0, body })}\n`);
          resolve(1);
        });
        return;
      }
      out.stderr(`tailing the exchanges of ${whose(target.role)} at ${target.url}${query.size ? ` (${query.toString().replace(/&/g, ', ')})` : ''}; Ctrl-C stops\n`);
      readEvents(res, (data, event) => {
        if (event === 'dropped') {
          out.stderr(`(${cell(data, 100)}: this terminal did not keep up)\n`);
          return;
        }
        let entry: InspectEntry;
        try {
          entry = JSON.parse(data) as InspectEntry;
        } catch {
          return;
        }
        out.stdout(opts.json ? `${JSON.stringify(entry)}\n` : `${tailLine(entry)}\n`);
      });
      res.on('end', () => {
        out.stderr(`ctbridge: ${whose(target.role)} closed the stream (it stopped or restarted)\n`);
        resolve(1);
      });
      res.on('error', () => resolve(1));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const e = new AdminUnreachable(target, err.code === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : err.message);
      out.stderr(`ctbridge: ${e.message}.\n${e.advice}\n`);
      resolve(1);
    });
    req.end();
  });
}
