/**
 * What the relay's and the agent's inspectors (relay/inspect.ts,
 * agent/inspect.ts) share: the ring of recent exchanges sized by
 * `inspect:`, and a reload's new sizes.
 */
import type { InspectConfig } from '../config/index.js';
import { ExchangeRing } from './ring.js';

export class Inspector {
  readonly ring: ExchangeRing;

  constructor(protected config: InspectConfig) {
    this.ring = new ExchangeRing({ entries: config.entries, maxBytes: config.maxBytes });
  }

  /** A reloaded config's `inspect:`. */
  update(config: InspectConfig): void {
    this.config = config;
    this.ring.setLimits({ entries: config.entries, maxBytes: config.maxBytes });
  }

  /** False with `inspect: off`: nothing is kept. */
  get enabled(): boolean {
    return this.config.enabled;
  }
}
