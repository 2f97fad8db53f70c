/**
 * `inspect:` in relay.yaml and agent.yaml: the recent exchanges kept for
 * the admin listener (src/inspect/ring.ts). `inspect: off` keeps none.
 */
import type { Section } from './schema-check.js';
import { integer, size } from './values.js';

export interface InspectConfig {
  readonly enabled: boolean;
  /** Exchanges kept per tunnel. */
  readonly entries: number;
  /** Bytes kept across all tunnels (an estimate of the memory held). */
  readonly maxBytes: number;
  /** The first bytes of text bodies kept per exchange and direction; 0: none. */
  readonly bodies: number;
}

export const INSPECT_DEFAULTS: InspectConfig = { enabled: true, entries: 100, maxBytes: 4 * 1024 ** 2, bodies: 0 };

export function parseInspect(root: Section): InspectConfig {
  const raw = root.value('inspect');
  if (raw === 'off' || raw === false) return { ...INSPECT_DEFAULTS, enabled: false };
  const s = root.section('inspect', ['entries', 'maxBytes', 'bodies']);
  return {
    enabled: true,
    entries: s.get('entries', integer(1, 100_000), INSPECT_DEFAULTS.entries),
    maxBytes: s.get('maxBytes', size({ min: 64 * 1024, max: 1024 ** 3 }), INSPECT_DEFAULTS.maxBytes),
    bodies: s.get('bodies', size({ max: 1024 ** 2 }), INSPECT_DEFAULTS.bodies),
  };
}
