/**
 * The agent's side of a tunnel: each exchange the relay opens is one
 * request to the target the agent's own config names for the tunnel (the
 * relay only ever names a tunnel). The request head is checked (tunnel,
 * allowPaths, header size), given the target's Host, base path and
 * credentials, and sent with undici from the tunnel's pool; the response
 * head and body go back on the exchange. No HTTP bytes are parsed here but
 * the target's answer, by undici.
 *
 *   relay ──exchange──▶ TunnelRequests ──undici Pool──▶ target
 *
 * Each request is a TargetCall (target-call.ts): undici's handler, with
 * backpressure both ways.
 */
import { basename } from 'node:path';
import type { AgentConfig } from '../src/config/index.js';
import { CtbridgeError } from '../src/errors.js';
import { endToEnd, getHeader } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { Exchange } from '../src/mux/exchange.js';
import type { RequestHead } from '../src/mux/heads.js';
import { RELAY_ADDED_HEADERS } from '../src/protocol.js';
import { redactUrl } from '../src/redact.js';
import { checkPath } from './allow-paths.js';
import type { AgentInspect } from './inspect.js';
import { logRequest, newEntry } from './request-log.js';
import { TargetCall } from './target-call.js';
import { createTunnelTarget, createTunnelTargets, type TunnelTarget } from './target-pool.js';
import { IdleWaiters } from '../src/idle-waiters.js';

/** Fields undici sets itself (or refuses), besides the hop-by-hop ones. */
const UNDICI_OWNED: ReadonlySet<string> = new Set(['expect', 'host']);

/** Per tunnel, for the status page and metrics. */
export interface TunnelCounts {
  requests: number;
  failures: number;
  open: number;
}

/** A failure to reach a target, kept for the status page (no secrets: the message names origin and tunnel only). */
export interface RecentFailure {
  at: string;
  tunnel: string;
  code: string;
  message: string;
}

const RECENT_FAILURES = 20;

export class TunnelRequests {
  private targets: Map<string, TunnelTarget>;
  private file: string;
  private active = 0;
  private readonly idleWaiters = new IdleWaiters();
  private accepting = true;
  readonly counts = new Map<string, TunnelCounts>();
  readonly recentFailures: RecentFailure[] = [];
  /** Called for each finished target request: tunnel, status (0 when none), seconds, error code, body bytes from the relay (in) and to it (out). */
  /** Keeps recent exchanges for the admin listener (agent/inspect.ts). */
  inspect: AgentInspect | undefined;
  onFinished: ((tunnel: string, status: number, seconds: number, code: string | undefined, bytes: { in: number; out: number }) => void) | undefined;

  constructor(private config: AgentConfig, private readonly log: Logger) {
    this.file = basename(config.file);
    this.targets = createTunnelTargets(config);
  }

  /** The tunnels' targets now: name → redacted target URL. */
  targetsNow(): Map<string, TunnelTarget> {
    return this.targets;
  }

  /**
   * Takes the tunnels of a reloaded config: a tunnel whose settings did not
   * change keeps its pool; a changed or removed one gets a new pool (or
   * none) for new requests, and its old pool closes once its running
   * requests are done. Returns the names of the tunnels that changed.
   */
  update(next: AgentConfig): string[] {
    const changed: string[] = [];
    const targets = new Map<string, TunnelTarget>();
    for (const tunnel of Object.values(next.tunnels)) {
      const old = this.targets.get(tunnel.name);
      if (old && JSON.stringify(old.config) === JSON.stringify(tunnel) && next.limits.maxStreams === this.config.limits.maxStreams) {
        targets.set(tunnel.name, old);
      } else {
        targets.set(tunnel.name, createTunnelTarget(tunnel, next.limits.maxStreams));
        changed.push(tunnel.name);
      }
    }
    for (const [name, old] of this.targets) {
      if (targets.get(name) === old) continue;
      if (!targets.has(name)) changed.push(name);
      void old.pool.close();
    }
    this.targets = targets;
    this.config = next;
    this.file = basename(next.file);
    return changed;
  }

  private countsOf(tunnel: string): TunnelCounts {
    let c = this.counts.get(tunnel);
    if (!c) this.counts.set(tunnel, (c = { requests: 0, failures: 0, open: 0 }));
    return c;
  }

  /** A target request failed: counted, and kept among the recent failures. */
  private recordFailure(tunnel: string, err: CtbridgeError): void {
    this.countsOf(tunnel).failures++;
    this.recentFailures.unshift({ at: new Date().toISOString(), tunnel, code: err.code, message: err.message });
    if (this.recentFailures.length > RECENT_FAILURES) this.recentFailures.pop();
  }

  /** Exchanges being served (WebSocket connections included). */
  get inFlight(): number {
    return this.active;
  }

  /** An exchange the relay opened. */
  serve(ex: Exchange): void {
    const { head } = ex;
    const target = this.targets.get(head.tunnel);
    if (head.kind === 'egress' || !target) {
      const err = head.kind === 'egress'
        ? new CtbridgeError('CTB_PROTOCOL', 'the agent takes no egress exchanges from the relay')
        : new CtbridgeError('CTB_TUNNEL_NOT_ALLOWED', `tunnel '${head.tunnel}' is not in this agent's config (${this.file}); the agent only connects to targets it lists`);
      this.log.warn({ tunnel: head.tunnel, kind: head.kind, code: err.code, requestId: head.requestId }, 'refused an exchange for a tunnel not in the config');
      ex.reset(err);
      return;
    }
    if (!this.accepting) {
      ex.reset(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent is shutting down and takes no new requests'));
      return;
    }
    const entry = newEntry(head);
    const counts = this.countsOf(head.tunnel);
    counts.requests++;
    counts.open++;
    this.active++;
    ex.once('close', () => {
      counts.open--;
      this.active--;
      this.onFinished?.(head.tunnel, entry.status, (performance.now() - entry.start) / 1000, entry.code, { in: ex.bytesIn, out: ex.bytesOut });
      if (this.active === 0) this.idleWaiters.wake();
    });
    this.inspect?.watch(ex, entry, target);
    const refusal = this.refusal(head, target);
    if (refusal) {
      entry.status = refusal.status;
      entry.code = refusal.code;
      ex.reset(refusal);
      logRequest(this.log, entry, false);
      return;
    }
    new TargetCall(ex, target, entry, this.file, this.log, (err) => this.recordFailure(head.tunnel, err)).start(this.targetHeaders(head, target));
  }

  /** Stop taking new exchanges (the relay has confirmed it sends no more). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves true once no exchange is in flight, false after `ms`. */
  whenIdle(ms: number): Promise<boolean> {
    return this.idleWaiters.wait(this.active === 0, ms);
  }

  /** Cuts whatever is left and closes the target connection pools. */
  async destroy(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => t.pool.destroy(new CtbridgeError('CTB_SHUTTING_DOWN', 'the agent shut down'))));
  }

  /** Why the agent will not send this request to the target, or undefined. */
  private refusal(head: RequestHead, target: TunnelTarget): CtbridgeError | undefined {
    const verdict = checkPath(head.target, target.config.allowPaths);
    if (verdict === 'bad-encoding') return new CtbridgeError('CTB_BAD_REQUEST', 'the request path is not valid percent-encoded UTF-8');
    if (verdict === 'denied') {
      const path = redactUrl(head.target.replace(/[?#].*$/s, ''));
      return new CtbridgeError('CTB_PATH_NOT_ALLOWED', `path ${path} is not in the allowPaths of tunnel '${target.name}'`);
    }
    // The caller's fields, without the few the relay adds, within the agent's own limit.
    let size = 0;
    for (let i = 0; i < head.headers.length; i += 2) {
      if (!RELAY_ADDED_HEADERS.has(head.headers[i].toLowerCase())) size += head.headers[i].length + head.headers[i + 1].length + 4;
    }
    if (size > this.config.limits.maxHeaderSize) {
      return new CtbridgeError('CTB_BAD_REQUEST', `the request headers are larger than the agent's limit of ${this.config.limits.maxHeaderSize} bytes`, {
        hint: `raise limits.maxHeaderSize in ${this.file}`,
      });
    }
    return undefined;
  }

  /** The fields the target gets: the relay's end-to-end ones, the tunnel's Host, and the target URL's credentials. */
  targetHeaders(head: RequestHead, target: TunnelTarget): string[] {
    const headers = endToEnd(head.headers, { alsoDrop: UNDICI_OWNED });
    const policy = target.config.hostHeader;
    const host = policy.mode === 'target' ? target.host : policy.mode === 'literal' ? policy.host : getHeader(head.headers, 'host');
    if (host) headers.push('Host', host);
    if (target.authorization && getHeader(headers, 'authorization') === undefined) headers.push('Authorization', target.authorization);
    return headers;
  }
}
