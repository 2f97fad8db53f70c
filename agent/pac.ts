/**
 * Proxy auto-configuration: the PAC file (from http(s):// or file://, or
 * WPAD's http://wpad/wpad.dat) is evaluated by pac-resolver inside a
 * QuickJS WebAssembly sandbox (quickjs-wasi): the script sees only the PAC
 * functions, never Node. Its answer ("PROXY a:3128; PROXY b:3128; DIRECT")
 * becomes the list of hops the tunnel agent tries in order.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { createPacResolver } from 'pac-resolver';
import { runningSea } from '../src/assets.js';
import { redactUrl } from '../src/redact.js';

export const WPAD_URL = 'http://wpad/wpad.dat';
const MAX_PAC = 1024 * 1024;

/** A PAC problem: the file cannot be fetched, does not compile, throws, or answers nothing usable. */
export class PacError extends Error {
  readonly code = 'PAC_FAILED';
}

export type PacHop = { kind: 'direct' } | { kind: 'proxy'; url: string };

/** "PROXY a:1; HTTPS b:2; DIRECT" → hops; SOCKS entries are skipped (ctbridge speaks HTTP CONNECT only). */
export function parsePacAnswer(answer: string): { hops: PacHop[]; skipped: string[] } {
  const hops: PacHop[] = [];
  const skipped: string[] = [];
  for (const entry of answer.split(';').map((e) => e.trim()).filter(Boolean)) {
    const [type, hostPort = ''] = entry.split(/\s+/);
    const kind = type.toUpperCase();
    if (kind === 'DIRECT') hops.push({ kind: 'direct' });
    else if ((kind === 'PROXY' || kind === 'HTTP' || kind === 'HTTPS') && /^[\w.-]+:\d{1,5}$|^\[[\da-f:.]+\]:\d{1,5}$/i.test(hostPort)) {
      hops.push({ kind: 'proxy', url: `${kind === 'HTTPS' ? 'https' : 'http'}://${hostPort}` });
    } else skipped.push(entry.slice(0, 80));
  }
  return { hops, skipped };
}

async function wasm(): Promise<Uint8Array> {
  const sea = runningSea();
  if (sea) return new Uint8Array(sea.getAsset('quickjs.wasm'));
  return readFile(createRequire(import.meta.url).resolve('quickjs-wasi/quickjs.wasm'));
}

export async function fetchPac(url: string, timeoutMs: number): Promise<string> {
  const where = redactUrl(url);
  try {
    if (url.startsWith('file:')) {
      const text = await readFile(fileURLToPath(url), 'utf8');
      if (text.length > MAX_PAC) throw new Error(`larger than ${MAX_PAC} bytes`);
      return text;
    }
    // A PAC file is fetched directly: never through a proxy.
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await boundedText(res);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const reason = e.cause?.code ?? e.code ?? e.message;
    throw new PacError(`cannot load the PAC file ${where}: ${reason}`);
  }
}

/** A PAC server's answer, read no further than MAX_PAC bytes (a hostile server cannot fill the agent's memory). */
async function boundedText(res: Response): Promise<string> {
  const tooLarge = (): Error => new Error(`larger than ${MAX_PAC} bytes`);
  if (Number(res.headers.get('content-length')) > MAX_PAC) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    if (size > MAX_PAC) {
      await res.body?.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** How long one run of the PAC script (compiling it, or one FindProxyForURL) may take, and how much memory it may use. */
const PAC_RUN_MS = 2000;
const PAC_MEMORY = 64 * 1024 * 1024;

export type FindProxy = (url: string) => Promise<string>;

/** Compiles a PAC script in the sandbox. */
export async function compilePac(script: string, url: string): Promise<FindProxy> {
  let find: ReturnType<typeof createPacResolver>;
  let deadline = Number.POSITIVE_INFINITY;
  try {
    // Loaded only when a PAC is configured: the evaluator and its parser take ~130 ms to import, every agent start otherwise.
    const [{ createPacResolver: create }, { QuickJS }] = await Promise.all([import('pac-resolver'), import('quickjs-wasi')]);
    // A PAC file that loops or allocates without end is stopped, never the agent's event loop or memory.
    const qjs = await QuickJS.create({ wasm: await wasm(), memoryLimit: PAC_MEMORY, interruptHandler: () => Date.now() > deadline });
    deadline = Date.now() + PAC_RUN_MS;
    find = create(qjs, script, { filename: redactUrl(url) });
  } catch (err) {
    throw new PacError(`the PAC file ${redactUrl(url)} does not compile: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
  }
  return async (target) => {
    try {
      deadline = Date.now() + PAC_RUN_MS;
      const answer = await find(target);
      if (typeof answer !== 'string') throw new Error(`FindProxyForURL returned ${typeof answer}, not a string`);
      return answer;
    } catch (err) {
      throw new PacError(`the PAC file ${redactUrl(url)} failed for ${redactUrl(target)}: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
    }
  };
}

/**
 * One PAC file as the agent uses it: fetched and compiled once, shared by
 * the dials to every relay URL (so two relays cost one fetch), and kept
 * until `refresh()` (a reload) or a failed fetch; each connection asks it
 * for the relay's hops with `find()`.
 */
export class PacFile {
  private finder: Promise<FindProxy> | undefined;

  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {}

  /** FindProxyForURL(`target`), fetching and compiling the file first when it is not yet (or no longer) at hand. */
  async find(target: string): Promise<string> {
    const finder = (this.finder ??= fetchPac(this.url, this.timeoutMs).then((script) => compilePac(script, this.url)));
    let find: FindProxy;
    try {
      find = await finder;
    } catch (err) {
      if (this.finder === finder) this.finder = undefined; // fetch again on the next attempt
      throw err;
    }
    return find(target);
  }

  /** Forgets the file: the next find() fetches it again. */
  refresh(): void {
    this.finder = undefined;
  }
}
