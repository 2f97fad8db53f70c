/**
 * What goes wrong on the way to the relay, as the agent logs it
 * (agent/relay-errors.ts, agent/proxy-errors.ts describe it), and what
 * those descriptions need to know of the connection.
 */
import type { ErrorCode } from '../src/errors.js';
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
