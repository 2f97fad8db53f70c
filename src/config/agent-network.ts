/**
 * The agent's way out of a corporate network, from agent.yaml: `proxy:` (a
 * URL, `none`, a PAC file, WPAD, the Windows system proxy), `proxyAuth:`
 * (Basic or NTLM credentials; the password from a file or the environment,
 * never echoed) and `trust:` (which root certificate stores to trust).
 */
import { readText } from './files.js';
import type { Section } from './schema-check.js';
import { ValueError, formatValue } from './units.js';
import { formatUrlValue, oneOf, text, url } from './values.js';

export const PROXY_PASSWORD_ENV = 'CTBRIDGE_PROXY_PASSWORD';

/**
 * `env`: HTTPS_PROXY/https_proxy/ALL_PROXY + NO_PROXY; `url`: one proxy;
 * `pac`: a PAC file (http(s):// or file:// URL); `auto`: WPAD (DHCP is not
 * asked; DNS http://wpad/wpad.dat); `system`: the Windows WinHTTP proxy.
 */
export type AgentProxyConfig =
  | { readonly mode: 'env' }
  | { readonly mode: 'none' }
  | { readonly mode: 'url'; readonly url: string }
  | { readonly mode: 'pac'; readonly url: string }
  | { readonly mode: 'auto' }
  | { readonly mode: 'system' };

export interface ProxyAuthConfig {
  readonly scheme: 'basic' | 'ntlm';
  readonly username: string;
  /** NTLM domain ('' for none). */
  readonly domain: string;
  /** Never logged. */
  readonly password: string;
  readonly passwordSource: 'env' | 'file';
}

/** `bundled`: Node's own root certificates; `system`: the operating system's store. */
export type TrustSource = 'bundled' | 'system';
export const DEFAULT_TRUST: readonly TrustSource[] = ['bundled', 'system'];

/** An http:// or https:// URL, credentials allowed (a proxy's, a tunnel target's). */
export const httpUrl = url({ protocols: ['http:', 'https:'], credentials: true });
const pacHttpUrl = url({ protocols: ['http:', 'https:'] });

/** An http(s):// URL (no credentials, query or fragment) or an absolute file:// URL. */
function pacUrl(v: string): string {
  if (/^file:/i.test(v)) {
    const u = new URL(v);
    if (u.pathname.length > 1 && !u.search && !u.hash) return u.href;
    throw new ValueError('bad file URL');
  }
  return pacHttpUrl(v);
}

export function proxy(v: unknown): AgentProxyConfig {
  if (v === 'none' || v === 'auto' || v === 'system') return { mode: v };
  if (typeof v === 'string' && /^pac\+/i.test(v.trim())) {
    try {
      return { mode: 'pac', url: pacUrl(v.trim().slice(4)) };
    } catch {
      throw new ValueError(`expected pac+http://, pac+https:// or pac+file:// followed by the PAC file's URL, got ${formatUrlValue(v)}`);
    }
  }
  let url: string;
  try {
    url = httpUrl(v);
  } catch (err) {
    throw err instanceof ValueError
      ? new ValueError(err.message.replace(/^expected /, 'expected "none", "auto", "system", pac+<url of a PAC file> or '))
      : err;
  }
  const parsed = new URL(url);
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    // Never echo the value: it holds the proxy password.
    throw new ValueError('expected a proxy URL whose user and password are percent-encoded (@ : / % as %40 %3A %2F %25), got a bad %-escape in them');
  }
  return { mode: 'url', url };
}

/**
 * `proxyAuth: {scheme, username, domain, passwordFile}`; the password from
 * `passwordFile` (read again on reload) or CTBRIDGE_PROXY_PASSWORD. A
 * `DOMAIN\user` username gives the NTLM domain too.
 */
export function parseProxyAuth(root: Section, env: NodeJS.ProcessEnv): ProxyAuthConfig | undefined {
  const s = root.section('proxyAuth', ['scheme', 'username', 'domain', 'passwordFile']);
  if (!s.present) return undefined;
  const scheme = s.req('scheme', oneOf(['basic', 'ntlm'] as const), '"ntlm" or "basic"');
  let username = s.req('username', text, 'the proxy user name, such as "svc-ctbridge" or "CORP\\\\svc-ctbridge"') ?? '';
  let domain = s.opt('domain', text) ?? '';
  const slash = username.indexOf('\\');
  if (slash > 0 && !domain) {
    domain = username.slice(0, slash);
    username = username.slice(slash + 1);
  }
  if (domain && scheme === 'basic') s.fail('domain', 'only used with scheme: ntlm (for Basic, write the user name the proxy expects)');
  const envPassword = env[PROXY_PASSWORD_ENV];
  let password: string | undefined;
  let passwordSource: ProxyAuthConfig['passwordSource'] = 'file';
  if (envPassword !== undefined && envPassword !== '') {
    password = envPassword;
    passwordSource = 'env';
  } else if (s.has('passwordFile')) {
    const loaded = s.opt('passwordFile', (v) => readText(root.problems.baseDir, v));
    // One trailing newline is the file's, not the password's.
    if (loaded) password = loaded.text.replace(/\r?\n$/, '');
    if (loaded && password === '') s.fail('passwordFile', `expected the proxy password in ${loaded.file}, got an empty file`);
  } else {
    s.fail('passwordFile', `missing; set passwordFile (a file holding the proxy password) or the ${PROXY_PASSWORD_ENV} environment variable`);
  }
  if (!scheme || password === undefined) return undefined;
  return { scheme, username, domain, password, passwordSource };
}

export function parseTrust(root: Section): readonly TrustSource[] {
  const list = root.list('trust', oneOf(['bundled', 'system'] as const), '[bundled, system]');
  if (list === undefined) return DEFAULT_TRUST;
  if (list.length === 0) root.fail('trust', `expected at least one of "bundled", "system" (add CA files with ca:), got ${formatValue(list)}`);
  return [...new Set(list)];
}
