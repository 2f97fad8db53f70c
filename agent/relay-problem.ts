/**
 * What goes wrong on the way to the relay, as the agent logs it
 * (agent/relay-errors.ts, agent/proxy-errors.ts describe it), and what
 * those descriptions need to know of the connection.
 */
import type { AgentConfig } from '../src/config/index.js';
import type { ErrorCode } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { decodeTokenUnverified } from '../src/token.js';
import type { RelayDial } from './forward-proxy.js';

export interface RelayProblem {
  level: 'error' | 'warn';
  msg: string;
  fields: { code?: ErrorCode; detail?: string; hint?: string; [key: string]: unknown };
}

export interface RelayContext {
  relayUrl: string;
  dial: RelayDial;
  connectTimeout: number;
  /** From the token (unverified), to make the "issue a new token" hint copy-pasteable. */
  agentId: string | undefined;
  tunnels: readonly string[];
  /** The token's expiry (unverified): the agent can tell by itself that the relay refused an expired token. */
  tokenExpiresAt?: Date;
}

/** The context of the dials to `relay` (one URL of `config.relays`): what the token says (unverified: only the relay can check it), for log lines and hints. */
export function relayContext(config: AgentConfig, relay: string, dial: RelayDial, log?: Logger): RelayContext {
  const configured = Object.keys(config.tunnels);
  const base = { relayUrl: relay, dial, connectTimeout: config.timeouts.connect };
  try {
    const claims = decodeTokenUnverified(config.token);
    return { ...base, agentId: claims.agentId, tunnels: [...new Set([...claims.tunnels, ...configured])], tokenExpiresAt: claims.expiresAt };
  } catch (err) {
    log?.debug({ err }, 'agent token cannot be read');
    return { ...base, agentId: undefined, tunnels: configured };
  }
}
