/**
 * Why the agent is not connected to the relay, in words an IT admin can act
 * on: connection errors, HTTP answers to the WebSocket upgrade, and the
 * relay's close codes, each as a log line (msg + fields with code and hint).
 * Never includes the token or the proxy password.
 */
import { formatDuration } from '../src/config/index.js';
import { untrusted } from '../src/log-text.js';
import { CloseCode, SUBPROTOCOL } from '../src/protocol.js';
import { DEFAULT_TOKEN_TTL } from '../src/token.js';
import type { IncomingMessage } from 'node:http';
import type { RelayContext, RelayProblem } from './relay-problem.js';
import { PacError } from './pac.js';
import { describeProxyRefusal } from './proxy-errors.js';
import { ProxyRefusal } from './proxy-tunnel.js';
import { isTlsProtocolError, TLS_VERIFY_CODES } from './target-errors.js';

export type { RelayContext, RelayProblem } from './relay-problem.js';

function tokenHint(ctx: RelayContext): string {
  return `issue a new token on the relay with \`ctbridge token --config relay.yaml --agent ${ctx.agentId ?? '<agent-id>'} --tunnels ${ctx.tunnels.join(',')} --ttl ${DEFAULT_TOKEN_TTL}\` and set it in CTBRIDGE_AGENT_TOKEN (or token: in agent.yaml)`;
}

const proxyHint = 'check proxy: in agent.yaml, or HTTPS_PROXY / NO_PROXY in the environment';

export function describeConnectError(err: unknown, ctx: RelayContext): RelayProblem {
  if (err instanceof ProxyRefusal) return describeProxyRefusal(err, ctx);
  if (err instanceof PacError) {
    return {
      level: 'error',
      msg: 'proxy auto-configuration (PAC) failed',
      fields: { code: 'CTB_RELAY_UNREACHABLE', detail: err.message, relay: ctx.dial.relay, hint: 'ask IT to fix the PAC file, or set proxy: in agent.yaml to the proxy URL (or "none")' },
    };
  }
  const e = (err ?? {}) as NodeJS.ErrnoException;
  const { proxy, relay } = ctx.dial;
  // With a proxy, every TCP connection the agent makes goes to the proxy.
  const where = proxy ? `forward proxy ${proxy.hostPort}` : `relay ${relay}`;
  const unreachable = (detail: string, hint: string): RelayProblem => ({
    level: 'error',
    msg: proxy ? 'cannot reach forward proxy' : 'cannot reach relay',
    fields: { code: 'CTB_RELAY_UNREACHABLE', detail, hint, relay, ...(proxy ? { proxy: proxy.display } : {}) },
  });
  const relayHint = proxy
    ? proxyHint
    : `check that the relay is running and that relay: in agent.yaml (${ctx.relayUrl}) is right; if this network only reaches the internet through a proxy, set proxy: in agent.yaml or HTTPS_PROXY`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return unreachable(`connection refused by ${where}`, relayHint);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable(`host name of ${where} not found (DNS)`, relayHint);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return unreachable(`no answer from ${where} (${e.code})`, `${relayHint}; a firewall may drop outbound connections`);
    case 'ECONNRESET':
    case 'EPIPE':
      if (!/TLS|SSL/i.test(e.message)) {
        return unreachable(`${where} closed the connection during the handshake`,
          `a firewall or proxy may block WebSocket connections; ${proxy ? proxyHint : 'check that relay: uses wss:// for a TLS relay and ws:// for a plain one'}`);
      }
  }
  if (e.code && TLS_VERIFY_CODES.has(e.code)) {
    const hint = e.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? `the certificate is for another host name: check the host in relay: (agent.yaml); if a proxy inspects TLS, set \`ca:\` in agent.yaml to your proxy's CA bundle`
      : !ctx.dial.trustsSystem
        ? "set `ca:` in agent.yaml to your proxy's/relay's CA bundle, or have it installed in the operating system's store and add system to trust: in agent.yaml"
        : ctx.dial.systemUnreadable
          ? `set \`ca:\` in agent.yaml to your proxy's/relay's CA bundle: trust: names system, but ${ctx.dial.systemUnreadable}`
          : "set `ca:` in agent.yaml to your proxy's/relay's CA bundle, or have it installed in the operating system's store";
    return { level: 'error', msg: 'cannot verify the relay certificate', fields: { code: 'CTB_RELAY_UNREACHABLE', detail: `${e.code}: ${e.message}`, hint, relay } };
  }
  if (isTlsProtocolError(e)) {
    return {
      level: 'error',
      msg: 'TLS handshake with the relay failed',
      fields: { code: 'CTB_RELAY_UNREACHABLE', detail: `${e.code ?? ''} ${e.message}`.trim(), relay,
        hint: "check that relay: uses wss:// only for a TLS relay (ws:// otherwise); if a proxy inspects TLS, set `ca:` in agent.yaml to your proxy's CA bundle" },
    };
  }
  if (/handshake has timed out/i.test(e.message ?? '')) return timeoutProblem(ctx);
  if (/Server sent (no|an invalid) subprotocol/i.test(e.message ?? '')) {
    return {
      level: 'error',
      msg: 'relay refused the agent protocol',
      fields: { code: 'CTB_PROTOCOL', detail: `the relay at ${relay} does not speak tunnel protocol ${SUBPROTOCOL}`, relay, hint: 'run the same ctbridge version on the relay and the agent' },
    };
  }
  return unreachable(e.code ? `${e.code}: ${e.message}` : String(e.message ?? err), relayHint);
}

export function timeoutProblem(ctx: RelayContext): RelayProblem {
  const { proxy, relay } = ctx.dial;
  return {
    level: 'error',
    msg: proxy ? 'cannot reach forward proxy' : 'cannot reach relay',
    fields: {
      code: 'CTB_RELAY_UNREACHABLE',
      detail: `no WebSocket connection to relay ${relay}${proxy ? ` through proxy ${proxy.hostPort}` : ''} within ${formatDuration(ctx.connectTimeout)}`,
      hint: `check the network path to the relay (${proxy ? proxyHint : 'firewall, proxy'}), or raise timeouts.connect in agent.yaml`,
      relay,
    },
  };
}

/**
 * The upgrade got a plain HTTP response. Through a forward proxy this is
 * past CONNECT (a proxy's own refusal is a ProxyRefusal error), so it came
 * from the relay's side: the relay, or a load balancer in front of it.
 */
export function describeHttpStatus(res: Pick<IncomingMessage, 'statusCode' | 'statusMessage' | 'headers'>, ctx: RelayContext): RelayProblem {
  const { relay } = ctx.dial;
  const status = res.statusCode ?? 0;
  const detail = `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  const header = (name: string) => (typeof res.headers[name] === 'string' ? untrusted(res.headers[name], 120) : undefined);
  const from = { answeredBy: `relay side ${relay}${ctx.dial.proxy ? ', through the forward proxy' : ''}`, ...(header('server') ? { server: header('server') } : {}), ...(header('via') ? { via: header('via') } : {}) };
  if (status === 401) {
    return { level: 'error', msg: 'relay refused the agent token', fields: { code: 'CTB_TOKEN_INVALID', status, relay, ...from, hint: tokenHint(ctx) } };
  }
  const hints: Record<number, string> = {
    404: 'check the path in relay: (agent.yaml); the relay serves agents on its agentPath (default /_ctbridge/agent)',
    502: 'a load balancer or reverse proxy in front of the relay has no healthy relay behind it',
    503: 'the relay (or a load balancer in front of it) is unavailable; the agent keeps retrying',
  };
  return {
    level: 'error',
    msg: 'unexpected response to the WebSocket upgrade',
    fields: {
      code: 'CTB_PROTOCOL',
      status,
      detail: `${detail} from relay ${relay}`,
      relay,
      ...from,
      hint: hints[status] ?? 'check that relay: in agent.yaml points at the ctbridge relay and that nothing in between rewrites WebSocket upgrades',
    },
  };
}

/** The request id a relay puts at the end of a close reason (relay/handshake-refusal.ts). */
const REQUEST_ID_IN_REASON = /\(request id ([0-9a-z]{1,40})\)$/;

/** The relay closed an established connection. */
export function describeClose(code: number, reason: string, ctx: RelayContext): RelayProblem {
  switch (code) {
    case CloseCode.TOKEN_INVALID: {
      // At connect the relay says only that it refused the token, with a request id; its log line with that id says why.
      // It says more (expired, revoked, key removed) only to an agent whose token it verified before (a live connection cut off).
      const requestId = REQUEST_ID_IN_REASON.exec(reason)?.[1];
      const revoked = /\brevoked\b/i.test(reason);
      const ask = requestId ? `give the relay operator request id ${requestId}: the relay's log line with it says why (expired, revoked, a key it no longer has, or a token for another relay)` : undefined;
      const expiredAt = ctx.tokenExpiresAt && ctx.tokenExpiresAt.getTime() <= Date.now() ? ctx.tokenExpiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
      const hint = expiredAt
        ? `this agent's token expired at ${expiredAt}; ${tokenHint(ctx)}`
        : revoked
        ? 'the relay operator has revoked this agent or token (auth.revoked in relay.yaml); the agent keeps retrying. If it should connect, ask them for a new token and to lift the revocation'
        : [ask, tokenHint(ctx)].filter(Boolean).join('; then ');
      return { level: 'error', msg: 'relay refused the agent token', fields: { code: 'CTB_TOKEN_INVALID', closeCode: code, reason: untrusted(reason), ...(requestId ? { requestId } : {}), hint } };
    }
    case CloseCode.TUNNEL_NOT_ALLOWED:
      return {
        level: 'error',
        msg: 'relay refused a tunnel',
        fields: {
          code: 'CTB_TUNNEL_NOT_ALLOWED', closeCode: code, reason,
          hint: `add the tunnel to the token (${tokenHint(ctx)}) or remove it from tunnels: in agent.yaml`,
        },
      };
    case CloseCode.NO_TUNNELS_OFFERED:
      return {
        level: 'error',
        msg: 'relay accepted the token, but the agent offered no tunnels',
        fields: { code: 'CTB_CONFIG_INVALID', closeCode: code, reason: untrusted(reason), hint: 'list the tunnels to serve under tunnels: in agent.yaml' },
      };
    case CloseCode.VERSION_MISMATCH:
    case CloseCode.BAD_HELLO:
      return {
        level: 'error',
        msg: 'relay refused the agent protocol',
        fields: { code: 'CTB_PROTOCOL', closeCode: code, reason, hint: 'run the same ctbridge version on the relay and the agent' },
      };
  }
  return { level: 'warn', msg: 'disconnected from relay', fields: { closeCode: code, reason: reason || (code === 1006 ? 'connection lost' : '') } };
}
