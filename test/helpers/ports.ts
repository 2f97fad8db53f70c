import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * Test ports come from below the kernel's ephemeral range (Linux: 32768–60999),
 * never from it: a port picked there (port 0) and closed again can be taken as
 * the source port of any outgoing connection of a concurrent test before the
 * process under test listens on it ("cannot listen on 127.0.0.1:33395: the
 * address is already in use", a flake seen in the cluster tests).
 */
const LOWEST = 20_000;
const highest = ((): number => {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (first > LOWEST + 1000) return first - 1;
  } catch {
    // not Linux: keep below the IANA dynamic range
  }
  return 32_767;
})();

function tryListen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** `n` distinct free loopback ports: all held open at once while chosen, so none is handed out twice. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  // Bounded: 50 tries per port; a full range fails the test with its reason.
  for (let tries = 0; servers.length < n; tries++) {
    if (tries >= 50 * n) throw new Error(`freePorts: no ${n} free loopback ports between ${LOWEST} and ${highest}`);
    const s = await tryListen(LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1)));
    if (s) servers.push(s);
  }
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
