/**
 * An agent with egress on a relay that has no Client Tracker tunnel: its
 * messages are refused with a clear XML error, and the relay stays up.
 */
import { afterAll, expect, it } from 'vitest';
import { request, statusOf } from '../helpers/http.js';
import { stopAll } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';
import { freePort } from '../../cli/demo/free-port.js';

afterAll(stopAll);

it('refuses egress for a tunnel that is not a clienttracker tunnel, and the relay keeps serving', async () => {
  const relay = await startRelayProcess({ tunnels: { plain: {} } });
  const port = await freePort();
  await startAgentProcess({ relayUrl: relay.url, tunnels: { plain: { target: 'http://127.0.0.1:9' } }, extra: { egress: { listen: `127.0.0.1:${port}` } } });
  const push =
    '<?xml version="1.0" encoding="UTF-8"?><isInRequest xmlns="http://clienttracker.cioc.ca/schema/"><login>jsmith</login><key>k-SECRET-1</key><ctid>42</ctid></isInRequest>';
  const r = await request(`http://127.0.0.1:${port}/t/plain/is_in_request`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: push });
  expect(r.headers['x-ctbridge-error']).toBe('CTB_TUNNEL_NOT_ALLOWED');
  expect(r.text).toMatch(/<error>/);
  // Still alive and answering.
  expect(await statusOf(`${relay.adminUrl}/healthz`)).toBe(200);
  expect(relay.proc.child.exitCode).toBeNull();
});
