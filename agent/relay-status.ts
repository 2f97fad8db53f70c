/**
 * What the agent shows of one relay connection: the `ctbridge status`
 * table and the status page (RelayConnectionStatus), and the log lines an
 * IT admin waits for once a connection serves its tunnels.
 */
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import { redactUrl } from '../src/redact.js';
import { isServing, type RelayConnectionState } from './relay-connection-state.js';
import type { ReadyInfo } from './relay-messages.js';

/** What `ctbridge status` and the status page call a state. */
export type StatusState = 'connected' | 'connecting' | 'waiting to reconnect' | 'stopped';

export interface RelayConnectionStatus {
  relay: string;
  /** The relay node it reached (in a cluster). */
  node?: string;
  state: StatusState;
  connectionId: string | undefined;
  connectedSince: string | undefined;
  attempts: number;
  /** Times the connection was lost after it had been ready. */
  reconnects: number;
  openExchanges: number;
  bytesIn: number;
  bytesOut: number;
  /** The last problem logged for this connection (refusal, unreachable, lost). */
  lastProblem: { at: string; message: string; code: string | undefined } | undefined;
}

/** `linkOpen`: the session has not started closing (a connection closing its link is no longer shown as connected). */
export function statusName(state: RelayConnectionState, linkOpen: boolean): StatusState {
  if (isServing(state) && linkOpen) return 'connected';
  if (state === 'leaving') return 'stopped';
  if (state === 'stopped') return 'stopped';
  if (state === 'waiting') return 'waiting to reconnect';
  return 'connecting';
}

/** The lines an IT admin waits for: this connection serves the tunnels, at these public URLs. */
export function logReady(log: Logger, config: AgentConfig, info: ReadyInfo): void {
  const node = info.node !== undefined ? { node: info.node } : {};
  log.info({ connectionId: info.connectionId, ...node, tunnels: Object.keys(config.tunnels), publicUrls: info.publicUrls }, 'tunnel ready');
  for (const tunnel of Object.values(config.tunnels)) {
    log.info({ tunnel: tunnel.name, publicUrl: info.publicUrls[tunnel.name], target: redactUrl(tunnel.target) }, 'serving tunnel');
  }
}
