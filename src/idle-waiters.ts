/**
 * "Tell me when nothing is in flight any more, or after `ms`": the one
 * event-driven way to wait for idle (a mux session's exchanges, the relay's
 * public requests on shutdown), instead of polling a counter.
 */
export class IdleWaiters {
  private readonly waiters = new Set<() => void>();

  /** Resolves true once `wake()` is called while idle (at once if `idle` now), false after `ms`. */
  wait(idle: boolean, ms: number): Promise<boolean> {
    if (idle) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        resolve(false);
      }, Math.max(ms, 0));
      this.waiters.add(wake);
    });
  }

  /** The owner became idle: every waiter resolves. */
  wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
