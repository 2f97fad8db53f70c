/**
 * Exchange ids of one MuxSession (session.ts): this side opens ids of its
 * parity (relay odd, agent even), wrapping after 2^32 past ids still in use;
 * the peer must open new ids of its own parity, rising. It also remembers
 * the ids we reset lately, whose late frames are expected and dropped.
 */
const MAX_ID = 0xffff_ffff;
/** How many recently reset exchange ids a session remembers (their late frames are dropped silently). */
const RESET_MEMORY = 4096;

export class ExchangeIds {
  private readonly role: 'relay' | 'agent';
  private nextId: number;
  /** Highest id the peer has opened: a frame for a higher id names an exchange that never existed. */
  private peerMaxId = 0;
  private lapped = false;
  /** Exchanges we reset lately: frames the peer sent before it heard of it are expected, and dropped. */
  private readonly resetByUs = new Set<number>();

  constructor(role: 'relay' | 'agent') {
    this.role = role;
    this.nextId = role === 'relay' ? 1 : 2;
  }

  /** A new id of ours that `open` does not hold. */
  allocate(open: { has(id: number): boolean }): number {
    for (;;) {
      const id = this.nextId;
      if (id + 2 > MAX_ID) {
        this.nextId = this.role === 'relay' ? 1 : 2;
        this.lapped = true;
      } else {
        this.nextId = id + 2;
      }
      if (!open.has(id)) return id;
    }
  }

  /** Whether the peer may open `id` (a new id of its parity); if so, it is now the highest the peer opened. */
  acceptPeerOpen(id: number): boolean {
    if (!this.isPeerId(id) || id <= this.peerMaxId) return false;
    this.peerMaxId = id;
    return true;
  }

  /** Whether no exchange of this id was ever opened, by either side. */
  neverOpened(id: number): boolean {
    return this.isPeerId(id) ? id > this.peerMaxId : !this.wasAllocated(id);
  }

  noteReset(id: number): void {
    this.resetByUs.add(id);
    if (this.resetByUs.size > RESET_MEMORY) this.resetByUs.delete(this.resetByUs.values().next().value as number);
  }

  /** Whether we reset exchange `id` lately. */
  wasReset(id: number): boolean {
    return this.resetByUs.has(id);
  }

  private isPeerId(id: number): boolean {
    return (id % 2 === 1) === (this.role === 'agent');
  }

  private wasAllocated(id: number): boolean {
    // Ids wrap after 2^32; once they have, every id counts as allocated.
    return id < this.nextId || this.lapped;
  }
}
