/**
 * `proxy: system` on Windows: the machine's WinHTTP proxy, which is what
 * services use (set by IT with `netsh winhttp set proxy …` or
 * `netsh winhttp import proxy source=ie`). Read from the registry value
 * HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections
 * \WinHttpSettings (REG_BINARY, the same on every display language) with
 * `reg query`; `netsh winhttp show proxy` (English output) is the fallback.
 *
 * The blob: DWORD structure version (0x18), DWORD change counter, DWORD
 * flags (1 direct; 2 bit set: proxy), DWORD length + ASCII proxy list,
 * DWORD length + ASCII bypass list (all little-endian).
 */
import { execFile } from 'node:child_process';

const KEY = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections';
const PROXY_FLAG = 0x2;

export interface WinHttpProxy {
  /** e.g. "proxy.corp:8080" or "http=p1:80;https=p2:443"; undefined = direct access. */
  proxy: string | undefined;
  /** e.g. ["*.corp", "<local>"]. */
  bypass: string[];
}

function splitBypass(list: string): string[] {
  return list.split(/[;\s]+/).map((s) => s.trim()).filter(Boolean);
}

/** The WinHttpSettings blob → proxy and bypass list; throws on a blob that does not hold together. */
export function parseWinHttpSettings(blob: Buffer): WinHttpProxy {
  const fail = (what: string) => new Error(`WinHttpSettings is not in the expected format (${what})`);
  if (blob.length < 16) throw fail('too short');
  const flags = blob.readUInt32LE(8);
  let at = 12;
  const str = (): string => {
    if (at + 4 > blob.length) throw fail('truncated');
    const n = blob.readUInt32LE(at);
    at += 4;
    if (n > blob.length - at) throw fail('length past the end');
    const s = blob.toString('latin1', at, at + n);
    at += n;
    return s;
  };
  const proxy = str().trim();
  const bypass = at < blob.length ? str() : '';
  return { proxy: flags & PROXY_FLAG && proxy ? proxy : undefined, bypass: splitBypass(bypass) };
}

/** `reg query … /v WinHttpSettings` output → the value's bytes, or undefined when absent. */
export function parseRegQuery(output: string): Buffer | undefined {
  const m = /WinHttpSettings\s+REG_BINARY\s+([0-9A-Fa-f]*)/.exec(output);
  return m ? Buffer.from(m[1], 'hex') : undefined;
}

/** `netsh winhttp show proxy` (English) → proxy and bypass list; undefined when the output is not understood. */
export function parseNetshOutput(output: string): WinHttpProxy | undefined {
  if (/Direct access \(no proxy server\)/i.test(output)) return { proxy: undefined, bypass: [] };
  const proxy = /Proxy Server\(s\)\s*:\s*(\S.*?)\s*$/im.exec(output)?.[1];
  if (!proxy) return undefined;
  const bypass = /Bypass List\s*:\s*(.*?)\s*$/im.exec(output)?.[1] ?? '';
  return { proxy, bypass: /^\(none\)$/i.test(bypass) ? [] : splitBypass(bypass) };
}

/** The proxy for a relay URL's scheme from a WinHTTP list ("http=a:80;https=b:443" or "a:8080"), as an http:// URL. */
export function proxyForScheme(list: string, scheme: 'http' | 'https'): string | undefined {
  const entries = list.split(/[;\s]+/).filter(Boolean);
  const tagged = new Map(entries.filter((e) => e.includes('=')).map((e) => [e.slice(0, e.indexOf('=')).toLowerCase(), e.slice(e.indexOf('=') + 1)]));
  const chosen = tagged.get(scheme) ?? entries.find((e) => !e.includes('=')) ?? (scheme === 'https' ? tagged.get('http') : undefined);
  if (!chosen) return undefined;
  return /^https?:\/\//i.test(chosen) ? chosen : `http://${chosen}`;
}

/** Whether `host` is on the bypass list: `*` wildcards, and `<local>` for names without a dot. */
export function bypassed(host: string, bypass: string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return bypass.some((raw) => {
    const entry = raw.toLowerCase().replace(/^https?:\/\//, '').replace(/:\d+$/, '');
    if (entry === '<local>') return !h.includes('.') && !h.includes(':');
    const re = new RegExp(`^${entry.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    return re.test(h);
  });
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10_000, windowsHide: true }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

/** Reads the machine's WinHTTP proxy (Windows only). */
export async function readWinHttpProxy(): Promise<WinHttpProxy> {
  try {
    const blob = parseRegQuery(await run('reg', ['query', KEY, '/v', 'WinHttpSettings']));
    if (blob) return parseWinHttpSettings(blob);
  } catch {
    // No value (never set: direct) or reg.exe refused; ask netsh.
  }
  const parsed = parseNetshOutput(await run('netsh', ['winhttp', 'show', 'proxy']));
  if (!parsed) throw new Error('cannot read the WinHTTP proxy: `netsh winhttp show proxy` printed something unexpected');
  return parsed;
}
