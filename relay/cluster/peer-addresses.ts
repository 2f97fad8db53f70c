/**
 * Who may open a node link to this node: the addresses `cluster.peers`
 * names (its static hosts and what its DNS name resolves to, looked up
 * again every `peers.refresh`), unless `peers.acceptAnyAddress`. A caller
 * from an address not known yet triggers one fresh lookup (a node that
 * just started may dial before this node's next refresh); at most one
 * such lookup runs per second, however many callers knock.
 */
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { ClusterPeers } from '../../src/config/index.js';
import { normalizeIp } from '../../src/http/client-address.js';
import type { Logger } from '../../src/log.js';

const ON_DEMAND_INTERVAL_MS = 1000;

export class PeerAddresses {
  private ips = new Set<string>();
  /** Last answers per name: kept when a lookup fails. */
  private readonly byName = new Map<string, string[]>();
  private onDemand: Promise<unknown> | undefined;
  private lastOnDemand = 0;

  constructor(
    private peers: ClusterPeers,
    private readonly log: Logger,
  ) {}

  /** After a reload: the new peers (looked up at once). */
  async update(peers: ClusterPeers): Promise<void> {
    this.peers = peers;
    await this.resolve();
  }

  /**
   * Looks up every name again. Answers this round's lookups by name (the
   * addresses as DNS gave them), or the error for a name whose lookup
   * failed: the cluster dials what `peers.dns` resolves to from this one
   * lookup rather than asking DNS twice per refresh.
   */
  async resolve(): Promise<Map<string, string[] | Error>> {
    const { dns, static: hosts } = this.peers;
    const names = new Set<string>();
    const next = new Set<string>();
    const round = new Map<string, string[] | Error>();
    for (const h of hosts) {
      if (isIP(h.host)) next.add(normalizeIp(h.host));
      else names.add(h.host);
    }
    if (dns) names.add(dns);
    await Promise.all([...names].map(async (name) => {
      try {
        const found = (await lookup(name, { all: true })).map((a) => a.address);
        round.set(name, found);
        this.byName.set(name, found.map(normalizeIp));
      } catch (err) {
        round.set(name, err as Error);
        this.log.debug({ name, err: (err as Error).message }, 'cluster peers: lookup failed; keeping its last answers for the address check');
      }
    }));
    for (const name of [...this.byName.keys()]) if (!names.has(name)) this.byName.delete(name);
    for (const ips of this.byName.values()) for (const ip of ips) next.add(ip);
    this.ips = next;
    return round;
  }

  /** Whether `ip` (a connection's peer address) may open a node link; may look the names up again first. */
  async allows(ip: string): Promise<boolean> {
    if (this.peers.acceptAnyAddress) return true;
    const normal = normalizeIp(ip);
    if (this.ips.has(normal)) return true;
    if (Date.now() - this.lastOnDemand >= ON_DEMAND_INTERVAL_MS && !this.onDemand) {
      this.lastOnDemand = Date.now();
      this.onDemand = this.resolve().finally(() => (this.onDemand = undefined));
    }
    if (this.onDemand) await this.onDemand;
    return this.ips.has(normal);
  }

  /** For the status page and logs. */
  get size(): number {
    return this.ips.size;
  }
}
