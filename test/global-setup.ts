/**
 * vitest globalSetup: compile src/, relay/, agent/ and cli/ to dist/ once
 * before any test, so the e2e tests (which run bin/ctbridge.js, i.e. dist/)
 * never test a stale build, also when one test file is run on its own.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  console.log(`tests on Node ${process.version}: building dist/`);
  const root = fileURLToPath(new URL('..', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
