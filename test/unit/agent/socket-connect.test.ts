/**
 * whenConnected (agent/socket-connect.ts), the one wait for a socket the
 * agent opens to the relay or a forward proxy.
 * Regression (review): the two copies it replaced (tunnel-agent.ts direct,
 * proxy-tunnel.ts connectToProxy) left their 'error'/'connect' listeners on
 * the socket they handed on (and one removed every 'close' listener).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { whenConnected } from '../../../agent/socket-connect.js';
import { direct } from '../../../agent/tunnel-agent.js';

const EVENTS = ['error', 'timeout', 'connect', 'close'] as const;
const counts = (s: net.Socket) => Object.fromEntries(EVENTS.map((e) => [e, s.listenerCount(e)]));

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function server(): Promise<string> {
  const peers = new Set<net.Socket>();
  const srv = net.createServer((c) => peers.add(c.on('error', () => undefined)));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanups.push(() => {
    for (const p of peers) p.destroy();
    srv.close();
  });
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

describe('whenConnected: connect helpers leave no listeners on the socket', () => {
  it('after success: only what the socket had before', async () => {
    const target = await server();
    const [host, port] = target.split(':');
    const socket = net.connect({ host, port: Number(port) });
    cleanups.push(() => socket.destroy());
    const before = counts(socket);
    expect(await whenConnected(socket, 'connect', AbortSignal.timeout(10_000))).toBe(socket);
    expect(counts(socket)).toEqual(before);
    // The direct dial goes the same way.
    const viaDirect = await direct(target, AbortSignal.timeout(10_000));
    cleanups.push(() => viaDirect.destroy());
    expect(viaDirect.listenerCount('error')).toBe(0);
    expect(viaDirect.listenerCount('connect')).toBe(0);
  });

  it("after a TLS handshake (an https:// proxy): 'secureConnect' awaited, nothing left behind", async () => {
    const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../../fixtures/config/tls/${name}`, import.meta.url)), 'utf8');
    const cert = fixture('relay.crt');
    const srv = tls.createServer({ cert, key: fixture('relay.key') }, (c) => c.on('error', () => undefined));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    cleanups.push(() => srv.close());
    const socket = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, servername: 'localhost', ca: [cert] });
    cleanups.push(() => socket.destroy());
    const before = counts(socket);
    expect(await whenConnected(socket, 'secureConnect', AbortSignal.timeout(10_000))).toBe(socket);
    expect(socket.authorized).toBe(true);
    // Node's own once('connect') fired meanwhile: no count grew, none of ours is left.
    const after = counts(socket);
    for (const e of EVENTS) expect(after[e], e).toBeLessThanOrEqual(before[e]!);
    expect(socket.listenerCount('secureConnect')).toBe(0);
  });

  it('after a timeout: rejects with the signal\'s reason, destroys the socket, leaves nothing behind', async () => {
    const target = await server();
    const [host, port] = target.split(':');
    const socket = net.connect({ host, port: Number(port) });
    const before = counts(socket);
    const timer = new AbortController();
    const waiting = whenConnected(socket, 'connect', timer.signal);
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    timer.abort(timeout); // before the connection can complete: connect is never synchronous
    await expect(waiting).rejects.toBe(timeout);
    expect(socket.destroyed).toBe(true);
    expect(counts(socket)).toEqual(before);
    await once(socket, 'close'); // destroyed without an 'error' event that no one would hear
  });

  it('after a refused connection: rejects with the error, leaves nothing behind', async () => {
    const target = await server();
    cleanups.splice(0).forEach((c) => c()); // the port is free again
    const [host, port] = target.split(':');
    const socket = net.connect({ host, port: Number(port) });
    const before = counts(socket);
    await expect(whenConnected(socket, 'connect', AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(counts(socket)).toEqual(before);
  });
});
