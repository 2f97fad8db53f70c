/**
 * Why the forward proxy refused the agent's CONNECT, for an IT admin: what
 * the proxy asked for (its Proxy-Authenticate schemes), what the agent sent,
 * who answered (the proxy, by its Server/Via headers; the relay was never
 * reached) and what to do. Never includes the proxy password.
 */
import type { ProxyRefusal } from './proxy-tunnel.js';
import type { RelayContext, RelayProblem } from './relay-problem.js';

const SCHEME_NAMES = { basic: 'Basic', ntlm: 'NTLM' } as const;

function authHint(offered: string[], ctx: RelayContext): string {
  const has = (s: string) => offered.some((o) => o.toLowerCase() === s);
  const ntlm = 'set proxyAuth: {scheme: ntlm, username: <user>, domain: <DOMAIN>, passwordFile: <file>} in agent.yaml (or the password in CTBRIDGE_PROXY_PASSWORD)';
  const basic = 'put the user and password in the proxy URL (proxy: http://user:password@proxy:3128 in agent.yaml, or HTTPS_PROXY; percent-encode @ : /), or set proxyAuth: {scheme: basic, username, passwordFile}';
  if (has('ntlm') && has('basic')) return `${ntlm}; or for Basic: ${basic}`;
  if (has('ntlm')) return ntlm;
  if (has('basic') || offered.length === 0) return basic;
  return negotiateHint(ctx);
}

function negotiateHint(ctx: RelayContext): string {
  return `ctbridge cannot authenticate with Kerberos (Negotiate). Ask the proxy's administrators to also offer NTLM or Basic for the agent's account, or to let CONNECT to the relay ${ctx.dial.relay} through without authentication (an exception for the relay host)`;
}

export function describeProxyRefusal(err: ProxyRefusal, ctx: RelayContext): RelayProblem {
  const { proxy, relay } = ctx.dial;
  const offered = err.offered;
  const has = (s: string) => offered.some((o) => o.toLowerCase() === s);
  const answeredBy = `forward proxy ${proxy?.hostPort ?? '?'}${err.server ? ` (${err.server})` : ''}; the relay was not reached`;
  const common = {
    status: err.status,
    ...(proxy ? { proxy: proxy.display } : {}),
    answeredBy,
    ...(offered.length ? { proxyOffers: offered.join(', ') } : {}),
    ...(err.via ? { via: err.via } : {}),
  };
  if (err.stage === 'keepalive' || err.stage === 'challenge') {
    // NTLM authenticates one connection: a proxy that closes it after its challenge cannot complete it. A challenge that
    // cannot be read is another matter: the proxy (or a device rewriting its headers) sent something that is not NTLM.
    const hint = err.stage === 'keepalive'
      ? 'check that the proxy keeps connections open (keep-alive) for NTLM; or use Basic if the proxy offers it'
      : "the proxy's NTLM challenge is not a valid NTLM message: check that nothing between the agent and the proxy rewrites Proxy-Authenticate headers, and ask the proxy's administrators about its NTLM set-up; or use Basic if the proxy offers it";
    return {
      level: 'error',
      msg: `forward proxy refused the agent: NTLM handshake failed (${err.status})`,
      fields: { code: 'CTB_PROXY_AUTH', ...common, detail: err.message, hint },
    };
  }
  // 407 is the standard answer; some proxies (tinyproxy) answer wrong credentials with 401.
  if (err.status === 407 || err.status === 401) {
    const tried = err.tried ? SCHEME_NAMES[err.tried] : undefined;
    const onlyNegotiate = offered.length > 0 && offered.every((o) => /^(negotiate|kerberos)$/i.test(o));
    let detail: string;
    let hint: string;
    if (onlyNegotiate) {
      detail = `the proxy accepts only Kerberos (${offered.join(', ')}), which ctbridge does not speak`;
      hint = negotiateHint(ctx);
    } else if (!tried) {
      detail = `the agent sent no proxy credentials${offered.length ? `; the proxy asks for ${offered.join(' or ')}` : ''}`;
      hint = authHint(offered, ctx);
    } else if (offered.length && !has(err.tried ?? '')) {
      detail = `the agent sent ${tried} credentials, but the proxy asks for ${offered.join(' or ')}`;
      hint = has('ntlm') || has('basic') ? authHint(offered, ctx) : negotiateHint(ctx);
    } else {
      detail = proxy?.auth?.source === 'url'
        ? 'the proxy rejected the user and password in the proxy URL'
        : `the proxy rejected the ${tried} credentials of proxyAuth`;
      hint = proxy?.auth?.source === 'url'
        ? 'check the user and password in the proxy URL (proxy: in agent.yaml, or HTTPS_PROXY; percent-encode special characters such as @ : /)'
        : `check proxyAuth.username${err.tried === 'ntlm' ? ', proxyAuth.domain' : ''} and the password (passwordFile or CTBRIDGE_PROXY_PASSWORD); the account may be locked or lack permission to use the proxy`;
    }
    return {
      level: 'error',
      msg: `forward proxy refused the agent: proxy authentication required (${err.status})`,
      fields: { code: 'CTB_PROXY_AUTH', ...common, detail, hint },
    };
  }
  return {
    level: 'error',
    msg: 'forward proxy refused the connection to the relay',
    fields: {
      code: 'CTB_RELAY_UNREACHABLE',
      ...common,
      detail: `HTTP ${err.status}${err.statusText ? ` ${err.statusText}` : ''} from proxy ${proxy?.hostPort ?? '?'} to CONNECT ${relay}`,
      hint: err.status === 403
        ? `the proxy does not allow connections to ${relay}; ask its administrator to allow CONNECT to that host and port`
        : `the proxy could not reach the relay at ${relay}; check the host and port in relay: (agent.yaml) and that the proxy can reach it`,
    },
  };
}
