/**
 * The inspector's memory: per tunnel, the last `entries` exchanges, and
 * across all tunnels at most `maxBytes` (an estimate of what the kept
 * strings and buffers cost; the oldest entries go first). Listeners (the
 * live tail) hear of each entry as it is recorded. Nothing here touches the
 * data path: the relay and agent hand over finished, redacted entries.
 */
import { matches, type EntryFilter, type InspectEntry, type RawExchange, type ReplaySource } from './entry.js';
import { ChurnMap } from '../churn-map.js';
import { toEntry } from './redact-entry.js';

export interface RingLimits {
  /** Entries kept per tunnel. */
  entries: number;
  /** Bytes kept across all tunnels. */
  maxBytes: number;
}

interface Kept {
  raw: RawExchange;
  seq: number;
  replay: ReplaySource | undefined;
  size: number;
  gone: boolean;
}

/** Cost of a string as kept: two bytes a character (worst case) and the object's own overhead. */
const str = (s: string | undefined): number => (s === undefined ? 0 : 32 + s.length * 2);

/** An estimate of the memory an exchange (and its replay source) holds, in bytes; never below its strings' and buffers' size. */
export function entrySize(e: RawExchange, replay?: ReplaySource): number {
  let n = 400 + str(e.target) + str(e.requestId) + str(e.tunnel) + str(e.method) + str(e.code) + str(e.servedBy);
  for (const h of [e.requestHeaders, e.responseHeaders]) for (const v of h) n += 16 + str(v);
  for (const b of [e.requestBody, e.responseBody]) if (b) n += 200 + b.head.length;
  if (e.ct) n += 128 + str(e.ct.message) + str(e.ct.id) + str(e.ct.firstError);
  if (replay) {
    // The headers and target are the exchange's own (counted above); the body is the kept request body.
    n += 100 + (replay.body === e.requestBody?.head ? 0 : replay.body.length);
  }
  return n;
}

/** More tunnels than this share one ring (a bound on the map, whatever names arrive). */
const MAX_RINGS = 1000;
const OTHER = '';

export class ExchangeRing {
  private readonly rings = new Map<string, Kept[]>();
  /** All kept entries, oldest first (some already gone; compacted now and then). */
  private order: Kept[] = [];
  /** Not a Map: one key in and one out per exchange (src/churn-map.ts). */
  private readonly byId = new ChurnMap<string, Kept>();
  private readonly listeners = new Set<(e: InspectEntry) => void>();
  private total = 0;
  private count = 0;
  private seq = 0;

  constructor(private limits: RingLimits) {}

  /** New limits (a reload): applied now. */
  setLimits(limits: RingLimits): void {
    this.limits = limits;
    for (const ring of this.rings.values()) while (ring.length > limits.entries) this.drop(ring.shift()!);
    this.trim();
  }

  /** Bytes kept now (the estimate bounded by maxBytes). */
  get bytes(): number {
    return this.total;
  }

  get size(): number {
    return this.count;
  }

  get maxBytes(): number {
    return this.limits.maxBytes;
  }

  /** Keeps `entry` (nothing is copied or redacted here) and tells the listeners. */
  record(entry: RawExchange, replay?: ReplaySource): void {
    const kept: Kept = { raw: entry, seq: ++this.seq, replay, size: entrySize(entry, replay), gone: false };
    let ring = this.rings.get(entry.tunnel);
    if (!ring) {
      const key = this.rings.size < MAX_RINGS ? entry.tunnel : OTHER;
      ring = this.rings.get(key) ?? [];
      this.rings.set(key, ring);
    }
    ring.push(kept);
    this.order.push(kept);
    this.byId.set(entry.requestId, kept);
    this.total += kept.size;
    this.count++;
    while (ring.length > this.limits.entries) this.drop(ring.shift()!);
    this.trim();
    if (this.listeners.size > 0) {
      const shown = toEntry(entry, kept.seq);
      for (const listen of this.listeners) listen(shown);
    }
  }

  /** Drops the oldest entries until the bytes are within the bound. */
  private trim(): void {
    let i = 0;
    while (this.total > this.limits.maxBytes && i < this.order.length) {
      const oldest = this.order[i++];
      if (oldest.gone) continue;
      // The oldest of all is the oldest of its own ring.
      const ring = this.ringOf(oldest.raw.tunnel);
      if (ring && ring[0] === oldest) ring.shift();
      else if (ring) ring.splice(ring.indexOf(oldest), 1);
      this.drop(oldest);
    }
    if (i > 0 || this.order.length > 2 * this.count + 64) this.order = this.order.filter((k) => !k.gone);
  }

  private ringOf(tunnel: string): Kept[] | undefined {
    return this.rings.get(tunnel) ?? this.rings.get(OTHER);
  }

  private drop(kept: Kept): void {
    kept.gone = true;
    this.total -= kept.size;
    this.count--;
    if (this.byId.get(kept.raw.requestId) === kept) this.byId.delete(kept.raw.requestId);
  }

  /** Entries passing `filter`, newest first, at most `limit`. */
  list(filter: EntryFilter = {}, limit = 100): InspectEntry[] {
    const out: InspectEntry[] = [];
    for (let i = this.order.length - 1; i >= 0 && out.length < limit; i--) {
      const k = this.order[i];
      if (!k.gone && matches(k.raw, filter)) out.push(toEntry(k.raw, k.seq));
    }
    return out;
  }

  /** The newest entry with this request id. */
  get(requestId: string): InspectEntry | undefined {
    const k = this.byId.get(requestId);
    return k ? toEntry(k.raw, k.seq) : undefined;
  }

  /** What a replay of `requestId` sends, when its whole request was kept. */
  replaySource(requestId: string): { entry: InspectEntry; source: ReplaySource } | undefined {
    const k = this.byId.get(requestId);
    return k?.replay ? { entry: toEntry(k.raw, k.seq), source: k.replay } : undefined;
  }

  /** Calls `listen` with every entry recorded from now on; returns the unsubscribe function. */
  subscribe(listen: (e: InspectEntry) => void): () => void {
    this.listeners.add(listen);
    return () => this.listeners.delete(listen);
  }
}
