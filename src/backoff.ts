/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): attempt n waits a uniform random time in
 * [0, min(maxDelay, initialDelay * 2^n)]. Full jitter spreads a crowd of
 * agents reconnecting after a relay restart instead of syncing them.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialDelay: number,
    private readonly maxDelay: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt, in ms; each call moves one attempt on. */
  next(): number {
    const ceiling = Math.min(this.maxDelay, this.initialDelay * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(this.random() * ceiling);
  }

  /** A connection that worked starts the sequence over. */
  reset(): void {
    this.attempt = 0;
  }
}
