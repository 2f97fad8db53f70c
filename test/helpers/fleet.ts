/**
 * A small fleet for the admin tests (status pages, `ctbridge status`,
 * metrics): a relay, two agents with their own ids (site-a serves two
 * tunnels, one of whose targets refuses connections; site-b serves one),
 * and a backend, all real processes on loopback.
 */
import { freePort } from '../../cli/demo/free-port.js';
import { startBackend, type Backend } from './backend.js';
import type { CtbridgeProcess } from './processes.js';
import { startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from './tunnel.js';

export interface Fleet {
  backend: Backend;
  relay: RelayInfo;
  /** Serves `web` (the backend) and `api` (a port nothing listens on). */
  siteA: CtbridgeProcess;
  /** Serves `files` (the backend). */
  siteB: CtbridgeProcess;
  /** A loopback port nothing listens on: the `api` target. */
  deadPort: number;
}

/** A loopback port that was free a moment ago and is closed now (connections to it are refused). */
export const closedPort = freePort;

export async function startFleet(): Promise<Fleet> {
  const backend = await startBackend();
  const deadPort = await closedPort();
  const relay = await startRelayProcess({ tunnels: { web: {}, api: {}, files: {} } });
  const [siteA, siteB] = await Promise.all([
    startAgentProcess({
      relayUrl: relay.url,
      token: await tokenFor(['web', 'api'], 'site-a'),
      tunnels: { web: { target: backend.url }, api: { target: `http://127.0.0.1:${deadPort}` } },
    }),
    startAgentProcess({
      relayUrl: relay.url,
      token: await tokenFor(['files'], 'site-b'),
      tunnels: { files: { target: backend.url } },
    }),
  ]);
  return { backend, relay, siteA, siteB, deadPort };
}
