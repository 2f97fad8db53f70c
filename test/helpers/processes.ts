/**
 * Starts real ctbridge processes through the CLI (bin/ctbridge.js) with
 * generated config files, and follows their JSON log lines.
 *
 * Every log line is also checked for a key that appears twice at its top
 * level (pino writes base fields, child bindings and a call's own fields
 * one after another, and most JSON readers keep only the last): such a line
 * fails the test during which it was written (an afterEach hook below), with
 * the line in the message.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { stringify } from 'yaml';

export const BIN = fileURLToPath(new URL('../../bin/ctbridge.js', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string };

/**
 * Keys that occur more than once at the top level of a JSON object text
 * (`{"a":1,"a":2}` → `["a"]`), which JSON.parse silently collapses.
 */
export function duplicateTopLevelKeys(raw: string): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '"') {
      let j = i + 1;
      while (j < raw.length && raw[j] !== '"') j += raw[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(raw.slice(i, j + 1)) as string;
        if (seen.has(key)) dups.push(key);
        else seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return dups;
}

/**
 * Duplicates known and owned elsewhere, tolerated until fixed: the line's
 * `msg` and the repeated key. Remove an entry when its call site is fixed.
 */
const KNOWN_DUPLICATES: readonly { msg: string; key: string; fix: string }[] = [];

const tolerated = (line: LogLine, key: string): boolean => KNOWN_DUPLICATES.some((d) => d.msg === line.msg && d.key === key);

/** Log lines with a duplicate top-level key, not yet reported by checkLogLines(). */
const duplicateKeyLines: string[] = [];

/** Node's process warnings on a child's stderr (TimeoutOverflowWarning, MaxListenersExceededWarning, ...), not yet reported. */
const processWarnings: string[] = [];
/** `(node:1234) TimeoutOverflowWarning: ...`; deprecations of dependencies are not ours to fail on. */
const NODE_WARNING = /^\(node:\d+\) (?!\[DEP)(\w*Warning): .*$/gm;

/**
 * Throws (failing the current test) if any process wrote a log line with a
 * duplicate top-level key, or Node printed a warning for it, since the last check.
 */
export function checkLogLines(): void {
  const warnings = processWarnings.splice(0);
  if (warnings.length) throw new Error(`Node printed warnings for a ctbridge process:\n${warnings.join('\n')}`);
  if (duplicateKeyLines.length === 0) return;
  const lines = duplicateKeyLines.splice(0);
  throw new Error(`log line${lines.length === 1 ? '' : 's'} with a duplicate top-level key (pino base, child bindings and the call's fields must not repeat a key):\n${lines.join('\n')}`);
}

afterEach(checkLogLines);

export class CtbridgeProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(readonly name: string, readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const raw = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(raw) as LogLine;
          const dups = duplicateTopLevelKeys(raw).filter((k) => !tolerated(line, k));
          if (dups.length) duplicateKeyLines.push(`${this.name}: duplicate ${dups.map((k) => JSON.stringify(k)).join(', ')} in ${raw}`);
        } catch {
          line = { msg: raw, unparsed: true };
        }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
      for (const m of c.matchAll(NODE_WARNING)) processWarnings.push(`${this.name}: ${m[0]}`);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** The config file it was started with, when a helper wrote one. */
  configFile: string | undefined;

  /** The admin listener's base URL, from its 'admin listening' line. */
  async adminUrl(): Promise<string> {
    const line = await this.waitForLog('admin listening');
    return `http://${String(line.listen)}`;
  }

  /**
   * Resolves with the first log line (past or future) that matches. The default bound only turns a
   * line that never comes into a readable failure: 15 s was too short for a process to start under
   * load 14-28 on 2 cores (seen: relay listening, tunnel ready).
   */
  waitForLog(match: string | ((l: LogLine) => boolean), timeoutMs = 40_000): Promise<LogLine> {
    const fn = typeof match === 'string' ? (l: LogLine) => l.msg === match : match;
    const seen = this.lines.find(fn);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name}: no log line matching ${String(match)} within ${timeoutMs} ms.\nstdout:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      this.waiters.push({ match: fn, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** Log lines after index `from` that match (for "this happened again" checks). */
  countLogs(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  get allOutput(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n') + this.stderr;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

const running = new Set<CtbridgeProcess>();

/** How ctbridge is started: `node bin/ctbridge.js` of this checkout, or another executable (the installed package's bin, a single executable) and its leading arguments. */
export type CtbridgeCommand = readonly [file: string, ...args: string[]];
const CHECKOUT: CtbridgeCommand = [process.execPath, BIN];

export function runCli(name: string, args: string[], env: NodeJS.ProcessEnv = {}, [file, ...lead]: CtbridgeCommand = CHECKOUT): CtbridgeProcess {
  const child = spawn(file, [...lead, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new CtbridgeProcess(name, child);
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

/** Kills whatever a test left running (afterEach/afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
  checkLogLines();
}

/** Runs a CLI command to completion; returns exit code and output. */
export async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}, command: CtbridgeCommand = CHECKOUT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = runCli(args[0] ?? 'cli', args, env, command);
  let stdout = '';
  p.child.stdout!.on('data', (c: string) => (stdout += c));
  const code = await p.exited;
  return { code, stdout, stderr: p.stderr };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ctbridge-test-'));
}

export function writeYaml(dir: string, name: string, value: unknown): string {
  const file = join(dir, name);
  // 0600, as an operator keeps a file holding a secret: the relay and the agent warn about wider modes (src/config/secret-files.ts).
  writeFileSync(file, stringify(value), { mode: 0o600 });
  return file;
}
