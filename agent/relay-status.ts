/**
 * What the agent shows of one relay connection: the `ctbridge status`
 * table and the status page (RelayConnectionStatus), and the log lines an
 * IT admin waits for once a connection serves its tunnels.
 */
import type { AgentConfig } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import type { MuxSession } from '../src/mux/session.js';
import { redactUrl } from '../src/redact.js';
import { isServing, type RelayConnectionState } from './relay-connection-state.js';
import type { ReadyInfo } from './relay-messages.js';
import type { RelayProblem } from './relay-problem.js';

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
  if (state === 'leaving' || state === 'stopped') return 'stopped';
  if (state === 'waiting') return 'waiting to reconnect';
  return 'connecting';
}

/** What a relay connection remembers across its links for the status page. */
export class ConnectionRecord {
  /** Dials made. */
  attempts = 0;
  /** Links lost after the relay had answered ready on them. */
  reconnects = 0;
  /** From the last ready. */
  connectionId: string | undefined;
  readySince: Date | undefined;
  lastProblem: RelayConnectionStatus['lastProblem'];

  constructor(private readonly relayUrl: string) {}

  /** Logs a problem and keeps it for the status page. */
  problem(log: Logger, p: RelayProblem, extra: Record<string, unknown> = {}): void {
    log[p.level]({ ...p.fields, ...extra }, p.msg);
    const detail = typeof p.fields.detail === 'string' ? p.fields.detail : typeof p.fields.reason === 'string' ? p.fields.reason : undefined;
    this.lastProblem = { at: new Date().toISOString(), message: detail ? `${p.msg}: ${detail}` : p.msg, code: p.fields.code };
  }

  /** `node` and the session's figures are shown only while `connected`. */
  status(state: RelayConnectionState, link: MuxSession | null, connected: boolean, node: string | undefined): RelayConnectionStatus {
    const session = connected ? link : null;
    return {
      relay: redactUrl(this.relayUrl),
      node: connected ? node : undefined,
      state: statusName(state, link?.isOpen ?? false),
      connectionId: connected ? this.connectionId : undefined,
      connectedSince: connected ? this.readySince?.toISOString() : undefined,
      attempts: this.attempts,
      reconnects: this.reconnects,
      openExchanges: session?.exchangeCount ?? 0,
      bytesIn: session?.bytesIn ?? 0,
      bytesOut: session?.bytesOut ?? 0,
      lastProblem: this.lastProblem,
    };
  }
}

/** The lines an IT admin waits for: this connection serves the tunnels, at these public URLs. */
export function logReady(log: Logger, config: AgentConfig, info: ReadyInfo): void {
  const node = info.node !== undefined ? { node: info.node } : {};
  log.info({ connectionId: info.connectionId, ...node, tunnels: Object.keys(config.tunnels), publicUrls: info.publicUrls }, 'tunnel ready');
  for (const tunnel of Object.values(config.tunnels)) {
    log.info({ tunnel: tunnel.name, publicUrl: info.publicUrls[tunnel.name], target: redactUrl(tunnel.target) }, 'serving tunnel');
  }
}
