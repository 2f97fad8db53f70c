/**
 * An agent with egress on a relay that has no Client Tracker tunnel: its
 * messages are refused with a clear XML error, and the relay stays up.
 */
import http from 'node:http';
import { afterAll, expect, it } from 'vitest';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';
import { freePort } from '../../cli/demo/free-port.js';

afterAll(stopAll);


function post(url: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/xml' } }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (c: string) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

it('refuses egress for a tunnel that is not a clienttracker tunnel, and the relay keeps serving', async () => {
  const relay = await startRelayProcess({ tunnels: { plain: {} } });
  const port = await freePort();
  await startAgentProcess({ relayUrl: relay.url, tunnels: { plain: { target: 'http://127.0.0.1:9' } }, extra: { egress: { listen: `127.0.0.1:${port}` } } });
  const push =
    '<?xml version="1.0" encoding="UTF-8"?><isInRequest xmlns="http://clienttracker.cioc.ca/schema/"><login>jsmith</login><key>k-SECRET-1</key><ctid>42</ctid></isInRequest>';
  const r = await post(`http://127.0.0.1:${port}/t/plain/is_in_request`, push);
  expect(r.headers['x-ctbridge-error']).toBe('CTB_TUNNEL_NOT_ALLOWED');
  expect(r.body).toMatch(/<error>/);
  // Still alive and answering.
  const health = await new Promise<number>((resolve, reject) => http.get(`${relay.adminUrl}/healthz`, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
  expect(health).toBe(200);
  expect(relay.proc.child.exitCode).toBeNull();
});
