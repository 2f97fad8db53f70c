/**
 * trust: system — a relay whose certificate comes from a CA that is only in
 * the operating system's store (added with update-ca-certificates, as IT
 * does for a TLS-inspecting proxy's root). The agent has no ca:, connects
 * with system trust on and is refused with it off. Needs root and a
 * writable /usr/local/share/ca-certificates (CI runs as root); otherwise the
 * suite is skipped and its title says why. The test CA is made fresh per run
 * and always removed again (update-ca-certificates takes ~20 s here: its Java hook).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { statusOf } from '../helpers/http.js';
import { stopAll, tempDir } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess } from '../helpers/tunnel.js';

const STORE = '/usr/local/share/ca-certificates';

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    accessSync(STORE, constants.W_OK);
  } catch {
    return `${STORE} is not writable`;
  }
  if (spawnSync('update-ca-certificates', ['--help']).error) return 'update-ca-certificates is not installed';
  if (spawnSync('openssl', ['version']).error) return 'openssl is not installed';
  return undefined;
}
const skipReason = whyNot();

const dir = tempDir();
const name = `ctbridge-test-${randomBytes(6).toString('hex')}`;
const installed = join(STORE, `${name}.crt`);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

let backend: Backend | undefined;
afterEach(async () => {
  await stopAll();
  await backend?.close();
});

describe.skipIf(skipReason !== undefined)(`trust: system (operating system certificate store)${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  beforeAll(() => {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
      '-subj', `/CN=${name} CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'relay.key', '-out', 'relay.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'relay.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'relay.crt', '-days', '2', '-extfile', 'ext.cnf');
    execFileSync('cp', [join(dir, 'ca.crt'), installed]);
    execFileSync('update-ca-certificates', [], { stdio: 'pipe' });
  }, 180_000);

  afterAll(() => {
    if (existsSync(installed)) {
      rmSync(installed);
      execFileSync('update-ca-certificates', [], { stdio: 'pipe' });
    }
  }, 180_000);

  it('an agent with no ca: connects with trust [bundled, system] (the default) and is refused with trust [bundled]', async () => {
    backend = await startBackend();
    const relay = await startRelayProcess({ tls: { cert: join(dir, 'relay.crt'), key: join(dir, 'relay.key') }, tunnels: { ucws: {} } });
    const wss = `https://localhost:${relay.port}`;
    const agent = await startAgentProcess({ relayUrl: wss, tunnels: { ucws: { target: backend.url } } });
    const trustLine = await agent.waitForLog('TLS trust for the relay');
    expect(JSON.stringify(trustLine.trust)).toMatch(/system \(/);
    expect(await statusOf(`${wss}/t/ucws/x`, { ca: execFileSync('cat', [join(dir, 'ca.crt')]) })).toBe(200);
    await agent.stop();

    const refused = await startAgentProcess({ relayUrl: wss, tunnels: { ucws: { target: backend.url } }, extra: { trust: ['bundled'] }, waitReady: false });
    const line = await refused.waitForLog('cannot verify the relay certificate');
    expect(line.code).toBe('CTB_RELAY_UNREACHABLE');
  });
});
