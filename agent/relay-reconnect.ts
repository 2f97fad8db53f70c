/**
 * When a relay connection dials again after its link ended or a dial
 * failed: full-jitter backoff (src/backoff.ts), started over once the relay
 * answers ready; the relay's Retry-After when it refused the upgrade as
 * busy (src/http/retry-after.ts); a recycle's own delay; and maxDelay after
 * a refusal that retrying cannot fix (still retried: the relay's config may
 * change). One timer at a time.
 */
import type { IncomingMessage } from 'node:http';
import { Backoff } from '../src/backoff.js';
import type { AgentConfig } from '../src/config/index.js';
import { retryAfterDelayMs } from '../src/http/retry-after.js';
import type { Logger } from '../src/log.js';

export class ReconnectSchedule {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | null = null;
  /** A one-off delay before the next dial (a recycle's, or a busy relay's Retry-After). */
  private nextDelay: number | undefined;
  /** The next dial follows a planned recycle: its lines are logged at debug. */
  private planned = false;

  constructor(
    private readonly config: AgentConfig['reconnect'],
    private readonly log: Logger,
  ) {
    this.backoff = new Backoff(config.initialDelay, config.maxDelay);
  }

  /** The dial now starting follows a planned recycle. */
  get plannedDial(): boolean {
    return this.planned;
  }

  /** The relay answered ready: the backoff starts over. */
  reset(): void {
    this.backoff.reset();
  }

  /** The relay refused the upgrade: a relay admitting a reconnect storm (503 CTB_RELAY_BUSY) says when to come back. */
  refused(res: IncomingMessage): void {
    // That, jittered, not the growing backoff.
    if (res.statusCode === 503) this.nextDelay ??= retryAfterDelayMs(res.headers['retry-after']);
  }

  /** A recycle: the next dial waits `ms` (undefined: the backoff decides). */
  delayNextDial(ms: number | undefined): void {
    this.nextDelay = ms;
  }

  /** Schedules `dial` after the delay due; `attempt` is the one about to be made (for the log line). */
  schedule(fatal: boolean, attempt: number, dial: () => void): void {
    const planned = !fatal && this.nextDelay !== undefined;
    const delayMs = fatal ? this.config.maxDelay : this.nextDelay ?? this.backoff.next();
    this.nextDelay = undefined;
    // A connection recycled on purpose (cluster: it reached a node already served) is routine.
    this.log[planned ? 'debug' : 'info']({ attempt, delayMs }, 'reconnecting');
    this.planned = planned;
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = null;
      dial();
    }, delayMs);
  }

  /** No dial is due any more. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
