/**
 * A relay node's view of the cluster (`cluster:` in relay.yaml): the other
 * nodes, found through DNS (a Kubernetes headless Service) or a static
 * list and refreshed every `peers.refresh`; a link to each (peer-link.ts)
 * over which this node forwards exchanges for tunnels it has no agent for;
 * and the listener where the others do the same to it (peer-endpoint.ts).
 *
 * No external store and no leader: each node learns from every other which
 * tunnels its agents serve, so any node can serve any tunnel. A node that
 * dies takes only the exchanges in flight through it.
 */
import { EventEmitter } from 'node:events';
import { clusterSecrets, formatHostPort, type ClusterConfig } from '../../src/config/index.js';
import type { Logger } from '../../src/log.js';
import type { MuxSession } from '../../src/mux/session.js';
import type { AgentRegistry } from '../agent-registry.js';
import { PeerAddresses } from './peer-addresses.js';
import { PeerEndpoint, type PeerEndpointOptions } from './peer-endpoint.js';
import { PeerLink } from './peer-link.js';

export { clusterRestartOnly } from './reload.js';

export interface ClusterOptions extends Omit<PeerEndpointOptions, 'cluster' | 'onForwarded' | 'addresses'> {
  config: ClusterConfig;
  /** How long dialing a peer may take. */
  connectTimeout: number;
}

export interface ClusterStatus {
  nodeId: string;
  listen: string;
  synced: boolean;
  peers: ReturnType<PeerLink['status']>[];
}

export class Cluster extends EventEmitter<{ change: [] }> {
  private readonly links = new Map<string, PeerLink>();
  private readonly selfAddresses = new Set<string>();
  private readonly endpoint: PeerEndpoint;
  private timer: NodeJS.Timeout | undefined;
  private resolvedOnce = false;
  /** `synced` when last looked at (noteSynced). */
  private wasSynced = false;
  private cursor = 0;
  private listenAddress = '';
  private stopped = false;
  private config: ClusterConfig;
  private refreshing: Promise<void> | undefined;
  private readonly addresses: PeerAddresses;
  /** Exchanges this node forwarded to others, and those others forwarded to it (metrics). */
  readonly forwarded = { sent: 0, received: 0 };

  constructor(private readonly opts: ClusterOptions) {
    super();
    this.config = opts.config;
    this.addresses = new PeerAddresses(opts.config.peers, opts.log);
    this.endpoint = new PeerEndpoint({ ...opts, cluster: () => this.config, addresses: this.addresses, onForwarded: () => this.forwarded.received++ });
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  async start(): Promise<void> {
    this.listenAddress = formatHostPort(await this.endpoint.listen());
    const { peers, tls } = this.config;
    this.opts.log.info({
      nodeId: this.nodeId, listen: this.listenAddress, tls: tls ? (tls.ca ? 'mutual' : 'server') : 'off', secrets: clusterSecrets(this.config).length,
      peers: { dns: peers.dns, port: peers.port, static: peers.static.map((p) => formatHostPort(p)), acceptAnyAddress: peers.acceptAnyAddress },
    }, 'cluster listening');
    await this.refresh();
  }

  /**
   * A reload's cluster section (clusterRestartOnly() found nothing that
   * needs a restart): new secrets re-link every node link, both the ones
   * this node dialed and the ones dialed to it; new peers are looked up
   * and linked now. Returns what changed, for the reload's answer.
   */
  async reconfigure(next: ClusterConfig): Promise<string[]> {
    const now = this.config;
    const changed: string[] = [];
    const secretsChanged = clusterSecrets(now).join('\n') !== clusterSecrets(next).join('\n');
    const peersChanged = JSON.stringify(now.peers) !== JSON.stringify(next.peers);
    this.config = next;
    if (secretsChanged) {
      changed.push('cluster secret: node links re-established');
      this.opts.log.info({ links: this.links.size }, 'cluster secret changed: linking to every node again with the new secret');
      for (const l of this.links.values()) l.relink('cluster secret changed');
      this.endpoint.closeLinks('cluster secret changed; link again');
    }
    if (peersChanged) {
      changed.push('cluster.peers');
      await this.refreshing;
      await this.addresses.update(next.peers);
      const cut = await this.endpoint.recheckAddresses();
      if (cut) changed.push(`${cut} node link(s) from addresses no longer in cluster.peers closed`);
      await this.refresh();
    }
    return changed;
  }

  /**
   * Every node this one knows has been tried once: a node that just started
   * is not ready until it knows which tunnels the others serve.
   */
  get synced(): boolean {
    return this.resolvedOnce && [...this.links.values()].every((l) => l.tried);
  }

  /** Logs when this node becomes ready in the cluster (synced), and when it stops being (a new node to try). */
  private noteSynced(): void {
    const synced = this.synced;
    if (synced === this.wasSynced) return;
    this.wasSynced = synced;
    const { known, connected } = this.peerCount();
    if (synced) this.opts.log.info({ nodeId: this.nodeId, nodes: this.nodes(), peers: { known, connected } }, 'cluster node ready');
    else {
      const waitingFor = [...this.links.values()].filter((l) => !l.tried).map((l) => l.address);
      this.opts.log.info({ nodeId: this.nodeId, waitingFor, peers: { known, connected } }, 'cluster node not ready: linking to nodes not tried yet');
    }
  }

  /** A node (other than `avoid`) that serves `tunnel` and takes exchanges, round robin; undefined when none. */
  pick(tunnel: string, avoid?: string): { session: MuxSession; nodeId: string } | undefined {
    const candidates = [...this.links.values()].filter((l) => l.usable && l.tunnels.has(tunnel) && (avoid === undefined || (l.nodeId ?? l.address) !== avoid));
    if (candidates.length === 0) return undefined;
    const link = candidates[this.cursor++ % candidates.length];
    this.forwarded.sent++;
    return { session: link.sessionNow!, nodeId: link.nodeId ?? link.address };
  }

  /** Whether any node serves `tunnel` now. */
  knows(tunnel: string): boolean {
    for (const l of this.links.values()) if (l.tunnels.has(tunnel)) return true;
    return false;
  }

  /** Other nodes known (from DNS or the static list) and linked to now. */
  peerCount(): { known: number; connected: number } {
    let connected = 0;
    for (const l of this.links.values()) if (l.usable) connected++;
    return { known: this.links.size, connected };
  }

  /** This node and the nodes it is connected to, by id (what agents are told). */
  nodes(): string[] {
    const ids = [this.nodeId];
    for (const l of this.links.values()) if (l.usable && l.nodeId) ids.push(l.nodeId);
    return [...new Set(ids)].sort();
  }

  status(): ClusterStatus {
    return { nodeId: this.nodeId, listen: this.listenAddress, synced: this.synced, peers: [...this.links.values()].map((l) => l.status()) };
  }

  /** SIGTERM: the other nodes stop forwarding to this one. */
  drain(): void {
    this.endpoint.drain();
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const l of this.links.values()) l.stop();
    await this.endpoint.close();
  }

  /** Looks up the peers' addresses again and links to new ones; drops those gone from DNS. */
  private refresh(): Promise<void> {
    this.refreshing = this.lookUpPeers().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async lookUpPeers(): Promise<void> {
    const { peers } = this.config;
    // One lookup of every name per refresh: it decides who may dial this node and whom this node dials.
    const looked = await this.addresses.resolve();
    const addresses = new Set(peers.static.map((p) => formatHostPort(p)));
    if (peers.dns) {
      const found = looked.get(peers.dns) ?? new Error('not looked up');
      if (found instanceof Error) {
        this.opts.log.warn({ dns: peers.dns, err: found }, 'cluster peers: DNS lookup failed; keeping the nodes known so far');
        for (const a of this.links.keys()) addresses.add(a);
      } else {
        for (const ip of found) addresses.add(formatHostPort({ host: ip, port: peers.port }));
      }
    }
    for (const address of addresses) {
      if (this.links.has(address) || this.selfAddresses.has(address)) continue;
      const link = new PeerLink(address, {
        nodeId: this.nodeId, secrets: () => clusterSecrets(this.config), tls: this.config.tls,
        window: this.opts.window(), heartbeat: this.opts.heartbeat(), connectTimeout: this.opts.connectTimeout,
      }, this.opts.log);
      link.on('change', () => {
        this.emit('change');
        this.noteSynced();
      });
      link.once('tried', () => this.noteSynced());
      link.once('self', () => {
        this.selfAddresses.add(address);
        this.links.delete(address);
        this.emit('change');
        this.noteSynced();
      });
      this.links.set(address, link);
      link.start();
    }
    for (const [address, link] of this.links) {
      if (addresses.has(address)) continue;
      link.stop();
      this.links.delete(address);
      this.emit('change');
    }
    this.resolvedOnce = true;
    this.noteSynced();
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), peers.refresh);
    this.timer.unref();
  }
}
