/**
 * How long an agent waits before dialing its relay URL again after a
 * connection landed on a cluster node it already has. A load balancer that
 * spreads connections sends the next dial elsewhere, so a short delay
 * (400 ms doubling to 2 s, jittered) is enough. One that always sends this
 * agent to the same node (source-IP stickiness, a single-node route) never
 * will: after ten landings in a row on that one node, the agent tries only
 * once a minute, and says so once.
 *
 * Only landings on the same node count as a streak. Under round robin with
 * other traffic, landings fall on any served node (two of three, with one
 * node missing): counting them all slowed an agent to once a minute after a
 * rolling restart, and it took over 20 s to reach the restarted node.
 */

/** Landings in a row on the same served node before the agent tries only once a minute. */
export const LANDINGS_BEFORE_SLOWING = 10;
const SLOW_DELAY_MS = 60_000;

export interface NextDial {
  /** Before dialing again, without jitter. */
  delayMs: number;
  /** True once, when the streak reaches LANDINGS_BEFORE_SLOWING: time for the log line. */
  slowedNow: boolean;
}

export class NodeLandings {
  private node: string | undefined;
  private streak = 0;

  /** A connection landed on `node`, which this agent already has. */
  landedOnServed(node: string): NextDial {
    this.streak = node === this.node ? this.streak + 1 : 1;
    this.node = node;
    return {
      delayMs: this.streak >= LANDINGS_BEFORE_SLOWING ? SLOW_DELAY_MS : Math.min(2000, 200 * 2 ** this.streak),
      slowedNow: this.streak === LANDINGS_BEFORE_SLOWING,
    };
  }

  /** A connection reached a node this agent lacked, or the cluster's nodes changed: what was learnt is stale. */
  reset(): void {
    this.node = undefined;
    this.streak = 0;
  }
}
