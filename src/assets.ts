/**
 * Files that ship with ctbridge besides its code (package.json, schemas/),
 * read by their path relative to the package root: from the single
 * executable's assets when running as one (scripts/build-sea.ts puts them
 * there), otherwise from the package directory (a checkout, dist/ or an
 * installed package).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface SeaApi {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

/** The SEA asset that lists every other asset key (one per line). */
export const SEA_ASSET_INDEX = 'assets.txt';

let seaApi: SeaApi | null | undefined;

/** node:sea when this process is a single executable application, else null. */
export function runningSea(): SeaApi | null {
  if (seaApi === undefined) {
    try {
      const sea = createRequire(import.meta.url)('node:sea') as SeaApi;
      seaApi = sea.isSea() ? sea : null;
    } catch {
      seaApi = null; // node:sea is missing before Node 20.12
    }
  }
  return seaApi;
}

/** The package root: this file is <root>/src/assets.ts, or <root>/dist/src/assets.js once built. */
export function packageRoot(): string {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  return basename(root) === 'dist' ? dirname(root) : root;
}

/** A shipped file, e.g. readAsset('schemas/registration.xsd'). */
export function readAsset(path: string): Buffer {
  const sea = runningSea();
  if (sea) return Buffer.from(sea.getAsset(path));
  return readFileSync(join(packageRoot(), path));
}

/** File names (not paths) directly in a shipped folder, e.g. listAssets('schemas'). */
export function listAssets(dir: string): string[] {
  const sea = runningSea();
  if (!sea) return readdirSync(join(packageRoot(), dir));
  const prefix = `${dir}/`;
  return Buffer.from(sea.getAsset(SEA_ASSET_INDEX))
    .toString('utf8')
    .split('\n')
    .filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'))
    .map((k) => k.slice(prefix.length));
}
