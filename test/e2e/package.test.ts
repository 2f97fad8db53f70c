/**
 * The package as IT installs it: `npm pack`, then `npm install <tgz>
 * --omit=dev` in an empty folder, and every command run from that install's
 * node_modules/.bin/ctbridge (no tsx, no TypeScript, no dev dependencies):
 * --version, relay/agent verify, token, a relay and an agent carrying a
 * request to a loopback backend, check against a loopback provider, demo.
 *
 * Prints the installed size and the agent's start-to-"tunnel ready" time.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSampleProvider, type SampleProvider } from '../../cli/demo/sample-provider.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runCli, runToEnd as runCliToEnd, stopAll, tempDir, writeYaml, type CtbridgeProcess } from '../helpers/processes.js';
import { relayAndAgent } from '../helpers/built-ctbridge.js';
import { TEST_SECRET } from '../helpers/tunnel.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const NPM_CLI = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
/** The Node running the tests comes first on PATH, so the bin's `#!/usr/bin/env node` runs on it. */
const PATH = [dirname(process.execPath), process.env.PATH].join(delimiter);
/**
 * 15 MB until the corporate-network support (issue 14): httpntlm brings
 * js-md4 (1.2 MB; OpenSSL 3 has no MD4) and underscore (2.6 MB, used only by
 * the parts of httpntlm ctbridge does not load), pac-resolver brings its
 * QuickJS sandbox (1.6 MB) and a JavaScript parser (about 2 MB).
 */
const MAX_INSTALLED_BYTES = 19 * 1024 * 1024;

let install: string;
let bin: string;

function npm(args: string[], cwd: string): string {
  const [cmd, pre] = npmCommand();
  return execFileSync(cmd, [...pre, ...args], { cwd, encoding: 'utf8', env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** npm of the Node running the tests when it sits next to it (a Node from a tarball or a registry package), else npm on PATH. */
function npmCommand(): [string, string[]] {
  try {
    lstatSync(NPM_CLI);
    return [process.execPath, [NPM_CLI]];
  } catch {
    return [process.platform === 'win32' ? 'npm.cmd' : 'npm', []];
  }
}

/** A command of the installed package's bin. */
const run = (name: string, args: string[], env: NodeJS.ProcessEnv = {}): CtbridgeProcess => runCli(name, args, { PATH, ...env }, [bin]);
const runToEnd = (args: string[]) => runCliToEnd(args, { PATH }, [bin]);

function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += diskBytes(path);
    else total += lstatSync(path).size;
  }
  return total;
}

beforeAll(() => {
  const work = tempDir();
  // dist/ was just built by the global setup; --ignore-scripts keeps prepack's
  // clean rebuild from pulling dist/ away from tests running alongside.
  const tgz = npm(['pack', '--ignore-scripts', '--silent', '--pack-destination', work], ROOT).trim().split('\n').pop()!;
  install = join(work, 'install');
  mkdirSync(install);
  writeFileSync(join(install, 'package.json'), '{ "private": true }\n');
  npm(['install', join(work, tgz), '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock'], install);
  bin = join(install, 'node_modules', '.bin', process.platform === 'win32' ? 'ctbridge.cmd' : 'ctbridge');
}, 180_000);

afterAll(stopAll);

describe('installed package (npm pack, npm install --omit=dev)', () => {
  it('ships dist, schemas, deploy examples, README with the docs it links to, and LICENSE, and no sources, tests or dev tools', () => {
    const pkgDir = join(install, 'node_modules', PKG.name);
    const top = readdirSync(pkgDir).sort();
    expect(top).toEqual(['LICENSE', 'README.md', 'bin', 'deploy', 'dist', 'docs', 'package.json', 'schemas']);
    expect(readdirSync(join(pkgDir, 'docs'))).toEqual(expect.arrayContaining(['configuration.md', 'errors.md', 'install.md', 'operating.md']));
    expect(readdirSync(join(pkgDir, 'dist')).sort()).toEqual(['agent', 'cli', 'relay', 'src']);
    expect(readdirSync(join(pkgDir, 'schemas')).filter((f) => f.endsWith('.xsd')).length).toBeGreaterThanOrEqual(7);
    const modules = readdirSync(join(install, 'node_modules'));
    for (const dev of ['tsx', 'esbuild', 'typescript', 'vitest', 'postject']) expect(modules).not.toContain(dev);
  });

  it('stays within 19 MiB on disk, all dependencies included', () => {
    const bytes = diskBytes(join(install, 'node_modules'));
    const xml = diskBytes(join(install, 'node_modules', 'libxml2-wasm'));
    console.log(`[figures] installed node_modules: ${bytes} bytes (${(bytes / 1048576).toFixed(1)} MiB); without libxml2-wasm: ${bytes - xml} bytes`);
    expect(bytes).toBeLessThanOrEqual(MAX_INSTALLED_BYTES);
  });

  it('--version prints the version in package.json', async () => {
    const r = await runToEnd(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(PKG.version);
  });

  describe('relay and agent', () => {
    let backend: Backend;
    let dir: string;
    let relayYaml: string;
    let provider: SampleProvider;

    beforeAll(async () => {
      backend = await startBackend();
      provider = await startSampleProvider();
      dir = tempDir();
      relayYaml = writeYaml(dir, 'relay.yaml', {
        listen: '127.0.0.1:0',
        auth: { secret: TEST_SECRET },
        // Not the default 127.0.0.1:9090: other tests (and a relay on this machine) may hold it.
        admin: { listen: '127.0.0.1:0' },
        tunnels: { web: { kind: 'http' } },
      });
    });
    afterAll(async () => {
      await backend?.close();
      await provider?.close();
    });

    it('relay verify, token, agent verify, then one request through the tunnel; agent start to ready is timed', async () => {
      const verifyRelay = await runToEnd(['relay', 'verify', '--config', relayYaml]);
      expect(verifyRelay.stderr).toBe('');
      expect(verifyRelay.code).toBe(0);
      expect(verifyRelay.stdout).toContain('OK');

      const token = await runToEnd(['token', '--config', relayYaml, '--agent', 'acme-1', '--tunnels', 'web', '--ttl', '1h']);
      expect(token.code).toBe(0);
      expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

      const { relay, agent, relayUrl, readyMs } = await relayAndAgent({ run, runToEnd }, {
        dir,
        relayYaml,
        token: token.stdout.trim(),
        target: backend.url,
        agent: { admin: { listen: '127.0.0.1:0' } },
      });
      console.log(`[figures] agent start to "tunnel ready" (installed package, loopback): ${readyMs.toFixed(0)} ms`);
      expect(readyMs).toBeLessThan(5_000);

      const res = await fetch(`${relayUrl}/t/web/hello?x=1`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ method: 'GET', url: '/hello?x=1' });

      expect(await agent.stop('SIGTERM')).toBe(0);
      expect(await relay.stop('SIGTERM')).toBe(0);
    });

    it('check validates a loopback Client Tracker provider (libxml2 and the schemas load from the install)', async () => {
      const r = await runToEnd(['check', provider.registrationUrl]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  });

  it('demo starts and plays its exchanges', async () => {
    const demo = run('demo', ['demo'], { CTBRIDGE_DEMO_PORT: '0' });
    const output = await new Promise<string>((resolve, reject) => {
      let text = '';
      demo.child.stderr!.on('data', (c: string) => {
        text += c;
        if (text.includes('Check a provider yourself')) resolve(text);
      });
      void demo.exited.then((code) => reject(new Error(`demo exited with ${code}: ${text}`)));
    });
    expect(output).not.toContain('✗');
    expect(output.match(/✓/g)?.length).toBe(4);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
  });
});
