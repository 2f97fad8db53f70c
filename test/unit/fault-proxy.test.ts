/**
 * The TCP fault proxy the dead-link tests put between agent and relay
 * (test/helpers/fault-proxy.ts), against a plain TCP echo server: it
 * forwards, blackholes (open, silent, closes not passed on), resets, heals.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';

let proxy: FaultProxy | undefined;
let echo: net.Server | undefined;
const sockets = new Set<net.Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await proxy?.close();
  if (echo) await new Promise<void>((resolve) => echo!.close(() => resolve()));
  proxy = undefined;
  echo = undefined;
});

/** An echo server behind a fault proxy; `serverSockets` are the echo server's ends. */
async function setup() {
  const serverSockets: net.Socket[] = [];
  echo = net.createServer((s) => {
    serverSockets.push(s);
    sockets.add(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  proxy = await startFaultProxy((echo.address() as net.AddressInfo).port);
  /** A connection through the proxy, once the echo server has its end. */
  const connect = async (): Promise<net.Socket> => {
    const arrived = once(echo!, 'connection');
    const s = net.connect(proxy!.port, '127.0.0.1');
    sockets.add(s);
    s.on('error', () => {});
    await Promise.all([once(s, 'connect'), arrived]);
    return s;
  };
  return { proxy, connect, serverSockets };
}

describe('fault proxy', () => {
  it('forwards both ways and counts connections and bytes', async () => {
    const { proxy: p, connect } = await setup();
    const s = await connect();
    await p.connected(1);
    s.write('hello');
    const [back] = (await once(s, 'data')) as [Buffer];
    expect(back.toString()).toBe('hello');
    await p.forwarded('toAgent', 5);
    expect(p.bytes).toEqual({ toRelay: 5, toAgent: 5 });
    expect(p.open).toBe(1);
  });

  it('blackholes: bytes are dropped both ways and a close is not passed on; heal resets the dead connection and passes new ones', async () => {
    const { proxy: p, connect, serverSockets } = await setup();
    const s = await connect();
    await p.connected(1);
    p.blackhole();
    s.write('lost');
    serverSockets[0].write('lost too');
    // The next connection is accepted, and is dead as well.
    const s2 = await connect();
    await p.connected(2);
    s2.end('lost as well');
    await once(s2, 'close');
    expect(p.bytes).toEqual({ toRelay: 0, toAgent: 0 });
    // Nothing reached the echo server's ends, and they are still open.
    expect(serverSockets.every((ss) => !ss.destroyed && ss.bytesRead === 0)).toBe(true);
    // (events.once would reject on the 'error' that comes first: ECONNRESET.)
    const closed = new Promise((resolve) => s.once('close', resolve));
    p.heal();
    await closed;
    const s3 = await connect();
    s3.write('back');
    const [back] = (await once(s3, 'data')) as [Buffer];
    expect(back.toString()).toBe('back');
  });

  it('resets every connection', async () => {
    const { proxy: p, connect } = await setup();
    const s = await connect();
    await p.connected(1);
    const error = once(s, 'error');
    p.reset();
    const [err] = (await error) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNRESET');
    expect(p.open).toBe(0);
  });
});
