/**
 * Reference point for the benchmark: one plain http-proxy-3 hop (no tunnel,
 * no logging) in front of the backend. Relay and agent each do at least this
 * much HTTP work per request, so it bounds what the tunnel can reach.
 * Prints its port on stdout.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';

const target = process.argv[2];
const proxy = createProxyServer({ target, agent: new http.Agent({ keepAlive: true }) });
const server = http.createServer((req, res) => proxy.web(req, res));
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
