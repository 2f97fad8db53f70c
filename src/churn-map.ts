/**
 * A key → value map for keys that come and go once per request (a mux
 * session's open exchanges, the inspector's entries by request id), kept on
 * a null-prototype object instead of a `Map`.
 *
 * Why not a `Map`: V8 stores a Map in a hash table that it replaces with a
 * new one every few dozen insertions when keys keep being added and deleted,
 * and the table it replaced keeps a pointer to its successor (for live
 * iterators) and to the values it held then. Once one table of the chain is
 * in the old generation (it lived through a burst of 1,000 exchanges, or a
 * full GC promoted it), every later table and every value they held is kept
 * alive through young GCs by that dead old table and promoted: each request
 * then ended up in the old generation (3-4 KB of it), young GCs took 5-10×
 * longer, and full GCs came every few seconds, 25-30% fewer requests per
 * second, until the process restarted (docs/performance.md, "Bursts of
 * concurrent exchanges"). An object's dictionary drops a replaced table with
 * no pointer to it, so a dead one keeps nothing alive.
 */
export class ChurnMap<K extends string | number, V> {
  private entries: Record<K, V> = Object.create(null) as Record<K, V>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    return this.entries[key];
  }

  has(key: K): boolean {
    return this.entries[key] !== undefined;
  }

  /** `value` must not be undefined (undefined means absent). */
  set(key: K, value: V): void {
    if (this.entries[key] === undefined) this.count++;
    this.entries[key] = value;
  }

  delete(key: K): boolean {
    if (this.entries[key] === undefined) return false;
    delete this.entries[key];
    this.count--;
    return true;
  }

  values(): V[] {
    return Object.values(this.entries);
  }

  clear(): void {
    this.entries = Object.create(null) as Record<K, V>;
    this.count = 0;
  }
}
