/**
 * A TCP proxy between an agent and the relay (loopback only) that fails on
 * command, the way networks do:
 *
 * - pass: bytes are forwarded both ways (the start);
 * - blackhole(): every connection open now, and every new one, stays open
 *   but drops every byte both ways, and a close on one side is not passed
 *   on (a dead NAT entry, a VPN flap, a crashed middlebox);
 * - reset(): every connection is destroyed both ways with a TCP RST;
 * - heal(): new connections pass again; the blackholed ones are reset (their
 *   flows are gone, as behind a NAT that lost them).
 *
 * Tests await its events instead of sleeping: `connected(n)` (the n-th
 * connection joined to the relay since start), `forwarded(direction, bytes)`.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';

export type Direction = 'toRelay' | 'toAgent';

interface Link {
  agent: net.Socket;
  relay: net.Socket;
  dead: boolean;
}

export interface FaultProxy {
  readonly port: number;
  /** The agent's `relay:` URL through the proxy. */
  readonly url: string;
  /** Connections open now. */
  readonly open: number;
  /** Connections accepted and joined to the relay since start. */
  readonly accepted: number;
  /** Bytes forwarded since start, by direction (dropped bytes not counted). */
  readonly bytes: Record<Direction, number>;
  blackhole(): void;
  reset(): void;
  heal(): void;
  /** Resolves once `n` connections have been accepted and joined to the relay since start. */
  connected(n: number): Promise<void>;
  /** Resolves once `bytes` bytes in all have been forwarded `direction` since start. */
  forwarded(direction: Direction, bytes: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(relayPort: number, relayHost = '127.0.0.1'): Promise<FaultProxy> {
  const links = new Set<Link>();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const bytes: Record<Direction, number> = { toRelay: 0, toAgent: 0 };
  let accepted = 0;
  let blackholed = false;

  const pipe = (link: Link, from: net.Socket, to: net.Socket, direction: Direction): void => {
    from.on('data', (chunk: Buffer) => {
      if (link.dead) return;
      bytes[direction] += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
      events.emit('bytes');
    });
    from.on('end', () => {
      if (!link.dead) to.end();
    });
    from.on('close', () => {
      // Behind a blackhole nobody hears of the close.
      if (!link.dead) to.destroy();
      if (link.agent.destroyed && link.relay.destroyed) links.delete(link);
    });
    from.on('error', () => {});
  };

  const server = net.createServer((agent) => {
    const relay = net.connect(relayPort, relayHost);
    const link: Link = { agent, relay, dead: blackholed };
    links.add(link);
    pipe(link, agent, relay, 'toRelay');
    pipe(link, relay, agent, 'toAgent');
    relay.once('connect', () => {
      accepted++;
      events.emit('connection');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  const waitFor = (event: string, done: () => boolean): Promise<void> =>
    done()
      ? Promise.resolve()
      : new Promise((resolve) => {
          const check = (): void => {
            if (!done()) return;
            events.off(event, check);
            resolve();
          };
          events.on(event, check);
        });

  const destroy = (link: Link): void => {
    link.agent.resetAndDestroy();
    link.relay.resetAndDestroy();
    links.delete(link);
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get open() {
      return links.size;
    },
    get accepted() {
      return accepted;
    },
    bytes,
    blackhole() {
      blackholed = true;
      for (const link of links) link.dead = true;
    },
    reset() {
      for (const link of [...links]) destroy(link);
    },
    heal() {
      blackholed = false;
      for (const link of [...links]) if (link.dead) destroy(link);
    },
    connected: (n) => waitFor('connection', () => accepted >= n),
    forwarded: (direction, n) => waitFor('bytes', () => bytes[direction] >= n),
    close: async () => {
      for (const link of [...links]) destroy(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
