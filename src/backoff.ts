/**
 * Backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): each wait is a uniform random time in [0, ceiling]. The ceiling
 * doubles with every attempt, from `initialDelay` up to `maxDelay`, but never
 * runs ahead of the outage itself: it is at most twice the time since the
 * first failed attempt (and at least `initialDelay`). Full jitter spreads a
 * crowd of agents reconnecting after a relay restart instead of syncing
 * them; the time bound keeps an agent that happened to draw a few short
 * waits from then sleeping up to 8 s of a 2 s restart (measured: the last
 * agents of a 15,000-agent reconnect storm, docs/performance.md).
 */
export class Backoff {
  private attempt = 0;
  /** When the first attempt of this sequence was scheduled (ms, `now()`). */
  private since = 0;

  constructor(
    private readonly initialDelay: number,
    private readonly maxDelay: number,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Delay before the next attempt, in ms; each call moves one attempt on. */
  next(): number {
    const now = this.now();
    if (this.attempt === 0) this.since = now;
    const byAttempt = this.initialDelay * 2 ** this.attempt;
    const byOutage = Math.max(this.initialDelay, 2 * (now - this.since));
    const ceiling = Math.min(this.maxDelay, byAttempt, byOutage);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(this.random() * ceiling);
  }

  /** A connection that worked starts the sequence over. */
  reset(): void {
    this.attempt = 0;
  }
}
