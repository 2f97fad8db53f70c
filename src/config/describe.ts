/**
 * Short human summaries of a loaded config for `verify` commands. Secrets
 * (JWT secret, agent token, proxy and target credentials) are masked.
 */
import { AGENT_TOKEN_ENV, type AgentConfig, type AgentTunnelConfig } from './agent-config.js';
import { PROXY_PASSWORD_ENV } from './agent-network.js';
import { JWT_SECRET_ENV, signingKeyOf, type RelayAuthConfig, type RelayAuthKey } from './relay-auth.js';
import type { RelayConfig } from './relay-config.js';
import type { RelayTunnelConfig } from './relay-tunnels.js';
import { formatDuration, formatHostPort, formatSize } from './units.js';
import { redactUrl } from './values.js';

const MASK = '****';

function restrictions(t: { allowPaths: readonly string[] | undefined }, extra: string[] = []): string[] {
  const out = [...extra];
  if (t.allowPaths) out.push(`${t.allowPaths.length} allowed path${t.allowPaths.length === 1 ? '' : 's'}`);
  return out;
}

function relayTunnel(t: RelayTunnelConfig): string {
  const parts: string[] = [t.kind];
  if (t.clientTracker) parts.push(`rpc ${redactUrl(t.clientTracker.rpcUrl)}`);
  if (t.allowFrom) parts.push(`from ${t.allowFrom.toString() || 'nowhere'}`);
  return `${t.name} (${restrictions(t, parts).join(', ')})`;
}

function authKey(k: RelayAuthKey): string {
  return k.publicKey
    ? `${k.publicKey.format === 'jwks' ? 'JWKS' : 'public key'} ${k.publicKey.file} (EdDSA/ES256)`
    : `HS256 shared secret ${MASK}${k.where === JWT_SECRET_ENV ? ` (from ${JWT_SECRET_ENV})` : ''}`;
}

function describeAuth(auth: RelayAuthConfig): string {
  const signer = signingKeyOf(auth);
  const parts: string[] = [];
  if (auth.keys.length === 1 && auth.keys[0]!.id === undefined) {
    const k = auth.keys[0]!;
    parts.push(`${authKey(k)}; audience ${auth.audience}, issuer ${auth.issuer}${k.privateKey ? `; signing key ${k.privateKey.file}` : ''}`);
  } else {
    const keys = auth.keys.map((k) => `${k.id} (${authKey(k)}${k === signer ? `, signs new tokens${k.privateKey ? ` with ${k.privateKey.file}` : ''}` : ''})`);
    parts.push(`keys ${keys.join(', ')}; audience ${auth.audience}, issuer ${auth.issuer}`);
  }
  const { agents, tokens } = auth.revoked;
  if (agents.length) parts.push(`revoked agents: ${agents.join(', ')}`);
  if (tokens.length) parts.push(`revoked tokens: ${tokens.join(', ')}`);
  return parts.join('; ');
}

export function describeRelayConfig(cfg: RelayConfig): string {
  const { auth, limits, timeouts } = cfg;
  const wsBase = cfg.publicUrl.replace(/^http/, 'ws');
  const tunnels = Object.values(cfg.tunnels);
  return [
    `relay config ${cfg.file}`,
    `listen: ${formatHostPort(cfg.listen)} (${cfg.tls ? `https, cert ${cfg.tls.cert.file}` : 'http'})`,
    `public URL: ${cfg.publicUrl}`,
    `agent endpoint: ${wsBase}${cfg.agentPath}`,
    `host routing: ${cfg.baseDomain ? `<tunnel>.${cfg.baseDomain}` : 'off'}`,
    `auth: ${describeAuth(auth)}`,
    `trusted proxies: ${cfg.trustedProxies.toString() || 'none'}`,
    `limits: request body ${formatSize(limits.maxRequestBody)}, response body ${
      limits.maxResponseBody === 0 ? '10 MiB (default, clienttracker tunnels)' : `${formatSize(limits.maxResponseBody)} (clienttracker tunnels)`
    }, headers ${formatSize(limits.maxHeaderSize)}, ${limits.maxStreamsPerAgent} streams per agent`,
    `timeouts: request ${formatDuration(timeouts.request)}, idle ${formatDuration(timeouts.idle)}, handshake ${formatDuration(
      timeouts.handshake,
    )}, shutdown grace ${formatDuration(timeouts.shutdownGrace)}`,
    `heartbeat: every ${formatDuration(cfg.heartbeat.interval)}, timeout ${formatDuration(cfg.heartbeat.timeout)}`,
    `log level: ${cfg.log.level}`,
    `tunnels: ${tunnels.length ? tunnels.map(relayTunnel).join(', ') : 'none configured'}`,
  ].join('\n');
}

function agentTunnel(t: AgentTunnelConfig): string {
  const notes: string[] = [];
  if (t.hostHeader.mode !== 'target') notes.push(`host header ${t.hostHeader.mode === 'literal' ? t.hostHeader.host : 'preserved'}`);
  if (t.ca) notes.push(`ca ${t.ca.file}`);
  if (!t.tlsVerify) notes.push('TLS verification off');
  const all = restrictions(t, notes);
  return `tunnel ${t.name} → ${redactUrl(t.target)}${all.length ? ` (${all.join(', ')})` : ''}`;
}

export function describeAgentConfig(cfg: AgentConfig): string {
  const proxy =
    cfg.proxy.mode === 'env'
      ? 'from environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY)'
      : cfg.proxy.mode === 'url'
        ? redactUrl(cfg.proxy.url)
        : cfg.proxy.mode === 'pac'
          ? `PAC file ${redactUrl(cfg.proxy.url)}`
          : cfg.proxy.mode;
  const lines = [
    `agent config ${cfg.file}`,
    `relay: ${cfg.relays.join(", ")}`,
    `token: ${MASK}${cfg.tokenSource === 'env' ? ` (from ${AGENT_TOKEN_ENV})` : ''}`,
    `proxy: ${proxy}`,
    ...(cfg.proxyAuth ? [`proxyAuth: ${cfg.proxyAuth.scheme}, user ${cfg.proxyAuth.domain ? `${cfg.proxyAuth.domain}\\` : ''}${cfg.proxyAuth.username}, password ${MASK} (from ${cfg.proxyAuth.passwordSource === 'env' ? PROXY_PASSWORD_ENV : 'passwordFile'})`] : []),
    `trust: ${cfg.trust.join(', ')}`,
    ...(cfg.ca ? [`ca: ${cfg.ca.file}`] : []),
    ...Object.values(cfg.tunnels).map(agentTunnel),
  ];
  if (cfg.egress) {
    lines.push(`egress: listen ${formatHostPort(cfg.egress.listen)}, from ${cfg.egress.allowFrom.toString()}, max body ${formatSize(cfg.egress.maxBody)}`);
  }
  lines.push(
    `timeouts: connect ${formatDuration(cfg.timeouts.connect)}, idle ${formatDuration(cfg.timeouts.idle)}, request ${formatDuration(
      cfg.timeouts.request,
    )}, shutdown grace ${formatDuration(cfg.timeouts.shutdownGrace)}`,
    `log level: ${cfg.log.level}`,
  );
  return lines.join('\n');
}
