/**
 * The measured setup on loopback, each part its own process: the sample
 * backend, a relay (`ctbridge relay --config relay.yaml`) and an agent
 * (`ctbridge agent --config agent.yaml`) serving tunnel `bench` to the backend.
 *
 * Readiness: the relay's "relay listening" and the agent's "tunnel ready" log
 * lines. Both are info lines, and the bench runs relay and agent at log level
 * warn (per-request info logging would be measured too), so when a line does
 * not come the bench falls back to the public behaviour: the relay's port
 * accepts connections; a GET through the tunnel reaches the backend.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { signAgentToken } from '../src/token.js';
import { spawnNode, tempDir, type Child, type LogLine } from './children.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** HS256 secrets must be at least 32 characters. */
const SECRET = 'bench-secret-0123456789abcdef-0123456789';
const TUNNEL = 'bench';

export interface Stack {
  backend: Child;
  relay: Child;
  agent: Child;
  backendUrl: string;
  tunnelUrl: string;
  /** The config files, for a bench that changes them and reloads (bench/inspect.ts). */
  relayYaml: string;
  agentYaml: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
}

function tunnelAnswers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/small`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('ZZZ00123')));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** Until `child` logs a line with this msg, or `probe` says yes; throws if the child exits or after 20 s. */
async function ready(child: Child, msg: string, probe: () => Promise<boolean>): Promise<LogLine | undefined> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    child.assertAlive();
    const line = child.lines.find((l) => l.msg === msg);
    if (line) return line;
    if (await probe()) return undefined;
    await sleep(100);
  }
  child.assertAlive();
  throw new Error(`${child.name}: not ready within 20 s (no "${msg}" line, probe failed)`);
}

/**
 * Relay and agent print a line per GC (`--trace-gc-nvp`, read by
 * bench/children.ts): bytes promoted to the old generation per request and
 * full GCs per run hardly depend on how busy the machine is, unlike req/s
 * and CPU per request, so they show a slowed state (docs/performance.md,
 * "Bursts of concurrent exchanges") even on a noisy machine.
 */
const GC_TRACE = ['--trace-gc-nvp'];

/** BENCH_PROFILE=<dir>: relay and agent write V8 CPU profiles there when they exit (open them in Chrome DevTools). */
function profileArgs(): string[] {
  const dir = process.env.BENCH_PROFILE;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

/** `extra`: more top-level keys for relay.yaml and agent.yaml (bench/inspect.ts: `inspect`, `admin`). */
export async function startStack(extra: { relay?: Record<string, unknown>; agent?: Record<string, unknown> } = {}): Promise<Stack> {
  const dir = tempDir();
  const backend = spawnNode('backend', ['--import', 'tsx', 'bench/backend.ts'], ROOT);
  const portLine = await backend.waitForLine((l) => l.unparsed === true && /^\d+$/.test(String(l.msg)));
  const backendUrl = `http://127.0.0.1:${String(portLine.msg)}`;

  const relayPort = await freePort();
  const relayYaml = join(dir, 'relay.yaml');
  writeFileSync(
    relayYaml,
    stringify({
      listen: `127.0.0.1:${relayPort}`,
      auth: { secret: SECRET },
      log: { level: 'warn' },
      limits: { maxStreamsPerAgent: 5000 },
      tunnels: { [TUNNEL]: {} },
      ...extra.relay,
    }),
  );
  const relay = spawnNode('relay', [...GC_TRACE, ...profileArgs(), 'bin/ctbridge.js', 'relay', '--config', relayYaml], ROOT);
  const listening = await ready(relay, 'relay listening', () => tcpOpen(relayPort));
  if (listening && listening.listen !== `127.0.0.1:${relayPort}`) {
    throw new Error(`relay listens on ${String(listening.listen)}, expected 127.0.0.1:${relayPort}`);
  }

  const token = await signAgentToken({ agentId: 'bench', tunnels: [TUNNEL], ttlMs: 30 * 24 * 3600_000, key: { secret: SECRET } });
  const agentYaml = join(dir, 'agent.yaml');
  writeFileSync(
    agentYaml,
    stringify({
      relay: `ws://127.0.0.1:${relayPort}`,
      token,
      log: { level: 'warn' },
      limits: { maxStreams: 5000 },
      tunnels: { [TUNNEL]: { target: backendUrl } },
      ...extra.agent,
    }),
  );
  const agent = spawnNode('agent', [...GC_TRACE, ...profileArgs(), 'bin/ctbridge.js', 'agent', '--config', agentYaml], ROOT);
  const tunnelUrl = `http://127.0.0.1:${relayPort}/t/${TUNNEL}`;
  await ready(agent, 'tunnel ready', () => tunnelAnswers(tunnelUrl));
  // Whichever came first, the tunnel must answer before anything is measured.
  if (!(await tunnelAnswers(tunnelUrl))) throw new Error(`agent ready but ${tunnelUrl}/small does not answer`);
  return { backend, relay, agent, backendUrl, tunnelUrl, relayYaml, agentYaml };
}
