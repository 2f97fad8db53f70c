/**
 * Child processes of the bench (backend, relay, agent): spawned with a
 * minimal environment, their stdout followed line by line (JSON log lines
 * parsed), and all of them SIGKILLed by killAll() — from a finally, on
 * SIGINT/SIGTERM and, as a last resort, on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type LogLine = Record<string, unknown> & { msg?: unknown; level?: unknown };

const PINO_WARN = 40;

/** What V8's --trace-gc-nvp lines said so far (relay and agent run with it: bench/stack.ts). */
export interface GcCounts {
  /** Young-generation GCs (scavenges) and full (mark-compact) GCs. */
  scavenges: number;
  full: number;
  /** Bytes the scavenges moved to the old generation. */
  promoted: number;
  /** Time paused in GC, all kinds. */
  pauseMs: number;
  /** Full GCs V8 did to give memory back (reduce_memory=1: its memory reducer, after the allocation rate drops). */
  reduceMemory: number;
  /** GC work outside the pauses: incremental marking steps on the main thread, and helper threads' marking and sweeping. */
  outsidePauseMs: number;
}

const GC_KIND = / gc=(\w+) /;
const KEEP_OUTPUT = 16 * 1024;

export class Child {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<void>;
  private output = '';
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private exitInfo: string | undefined;
  /** Set once the bench is measuring: warn/error lines then go to stderr. */
  echoWarnings = false;
  warnings = 0;
  readonly gc: GcCounts = { scavenges: 0, full: 0, promoted: 0, pauseMs: 0, reduceMemory: 0, outsidePauseMs: 0 };
  /** When the last full GC line arrived (ms since the epoch; 0: none yet). */
  lastFullGcAt = 0;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        this.onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.keep(chunk);
      if (this.echoWarnings) process.stderr.write(`[${this.name} stderr] ${chunk}`);
    });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      });
      proc.once('error', (err) => {
        this.exitInfo = `failed to start: ${err.message}`;
        resolve();
      });
    });
  }

  get pid(): number {
    if (this.proc.pid === undefined) throw new Error(`${this.name}: no pid (spawn failed)`);
    return this.proc.pid;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Throws, with the tail of its output, if the process is gone. */
  assertAlive(): void {
    if (!this.alive) throw new Error(`${this.name} ${this.exitInfo}; its last output:\n${this.output}`);
  }

  /** The last 16 KiB of its stdout and stderr. */
  get tail(): string {
    return this.output;
  }

  /** The first line (past or future) that matches; rejects if the process exits first or on timeout. */
  waitForLine(match: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => reject(new Error(`${this.name}: ${why}; its output:\n${this.output}`));
      const timer = setTimeout(() => fail(`no matching line within ${timeoutMs} ms`), timeoutMs);
      void this.exited.then(() => (clearTimeout(timer), fail(this.exitInfo ?? 'exited')));
      this.waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  kill(): void {
    if (this.alive) this.proc.kill('SIGKILL');
  }

  private onLine(raw: string): void {
    const gcKind = GC_KIND.exec(raw);
    if (gcKind) {
      this.onGcLine(gcKind[1], raw); // counted, not kept in the tail (one every few hundred ms)
      return;
    }
    this.keep(`${raw}\n`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    const line: LogLine = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as LogLine) : { msg: raw, unparsed: true };
    if (this.lines.length < 1000) this.lines.push(line);
    if (typeof line.level === 'number' && line.level >= PINO_WARN) {
      this.warnings++;
      if (this.echoWarnings) process.stderr.write(`[${this.name}] ${raw}\n`);
    }
    this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
  }

  /** One --trace-gc-nvp line: `gc=s` a scavenge, `gc=ms`/`gc=mc` a full GC. */
  private onGcLine(kind: string, raw: string): void {
    const field = (name: string): number => Number(new RegExp(` ${name}=([\\d.]+)`).exec(raw)?.[1] ?? 0);
    this.gc.pauseMs += field('pause');
    this.gc.outsidePauseMs += field('incremental');
    for (const m of raw.matchAll(/ background\.[\w.]+=([\d.]+)/g)) this.gc.outsidePauseMs += Number(m[1]);
    if (kind === 's') {
      this.gc.scavenges++;
      this.gc.promoted += field('promoted');
    } else {
      this.gc.full++;
      this.lastFullGcAt = Date.now();
      if (field('reduce_memory') === 1) this.gc.reduceMemory++;
    }
  }

  private keep(chunk: string): void {
    this.output = (this.output + chunk).slice(-KEEP_OUTPUT);
  }
}

const children = new Set<Child>();
/** Other processes to SIGKILL on cleanup (the load generator). */
const helpers = new Set<ChildProcess>();
const dirs = new Set<string>();

/** A temp dir, removed by cleanup(). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bench-'));
  dirs.add(dir);
  return dir;
}

/** Spawns `node <args>` in `cwd` with only PATH and HOME from our environment (no proxies, no CTBRIDGE_* variables). */
export function spawnNode(name: string, args: string[], cwd: string): Child {
  const proc = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child = new Child(name, proc);
  children.add(child);
  return child;
}

/** Has `proc` SIGKILLed by cleanup() if it is still running then. */
export function killOnCleanup(proc: ChildProcess): void {
  helpers.add(proc);
  proc.once('exit', () => helpers.delete(proc));
}

/** SIGKILLs every child and removes the temp dirs (synchronous, so it also works from an 'exit' handler). */
export function cleanup(): void {
  for (const p of helpers) p.kill('SIGKILL');
  for (const c of children) c.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

/** cleanup(), then waits until every child is gone; with BENCH_PROFILE, SIGTERM first (a profile is written on a clean exit). */
export async function cleanupAndWait(): Promise<void> {
  if (process.env.BENCH_PROFILE) {
    for (const c of children) if (c.alive) c.proc.kill('SIGTERM');
    await Promise.race([Promise.all([...children].map((c) => c.exited)), new Promise((r) => setTimeout(r, 15_000))]);
  }
  cleanup();
  await Promise.all([...children].map((c) => c.exited));
}

process.once('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, stopping\n`);
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
