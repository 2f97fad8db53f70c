/**
 * The admin listener's first check, on a real listener (loopback): an address
 * outside `admin.allowFrom` gets 403 and nothing else, and the relay's or
 * agent's log line names the key. Regression (review): the 403 body named
 * `admin.allowFrom`, a config key, to the caller it refused.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startAdminServer, type AdminHandle, type AdminRoutes } from '../../../src/admin/server.js';
import { CidrList } from '../../../src/config/units.js';
import { request } from '../../helpers/http.js';
import { captureLog } from '../relay/clienttracker/helpers.js';

const routes: AdminRoutes = {
  ready: () => ({ ready: true, reason: 'test' }),
  status: () => ({ secret: 'status-detail' }),
  page: () => '<p>status</p>',
  metrics: async () => ({ contentType: 'text/plain', text: '' }),
  reload: async () => ({ ok: true, message: '' }),
};

const { lines, log } = captureLog();
let handle: AdminHandle;

beforeAll(async () => {
  // Only 127.0.0.2 may call; the test calls from 127.0.0.1.
  const admin = { listen: { host: '127.0.0.1', port: 0 }, fallbackPorts: [], allowFrom: new CidrList(['127.0.0.2/32']), hosts: [] };
  handle = (await startAdminServer(admin, 'agent.yaml', log, routes))!;
});

afterAll(async () => {
  await handle.close();
});

it('refuses an address outside allowFrom with 403, no config key and none of the status; the log line names the key', async () => {
  const r = await request(`http://127.0.0.1:${handle.address.port}/api/status`);
  expect(r.status).toBe(403);
  expect(r.text).not.toMatch(/allowFrom|status-detail/);
  expect(JSON.parse(r.text)).toEqual({ error: 'this address may not use this listener' });
  expect(lines).toContainEqual(expect.objectContaining({ msg: 'admin request refused: the address is not in admin.allowFrom', from: '127.0.0.1', path: '/api/status' }));
});
