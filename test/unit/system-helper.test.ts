/**
 * test/helpers/system.ts: a test that needs a missing system package skips
 * with one visible line naming the package and its apt-get install, and the
 * run stays green; with CTBRIDGE_STRICT_TESTS=1 the file fails instead.
 * CTBRIDGE_TEST_HIDE plays the missing package on a machine that has it.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lookup } from '../helpers/system.js';
import { tempDir } from '../helpers/processes.js';

/** A directory holding an executable `name` (a shell script), as a package would install it. */
function fakeBin(name: string): string {
  const dir = join(tempDir(), 'bin');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), '#!/bin/sh\nexit 0\n');
  chmodSync(join(dir, name), 0o755);
  return dir;
}

describe('lookup', () => {
  it('finds an executable on PATH', () => {
    const dir = fakeBin('haproxy');
    const found = lookup('haproxy', 'a test', { PATH: dir });
    expect(found.path).toBe(join(dir, 'haproxy'));
  });

  it('CTBRIDGE_TEST_HIDE makes a present package missing; the line names it and its apt-get install', () => {
    const found = lookup('haproxy', 'the load balancer', { PATH: fakeBin('haproxy'), CTBRIDGE_TEST_HIDE: 'chromium, haproxy' });
    expect(found.path).toBeUndefined();
    expect(found.strict).toBe(false);
    expect(found.message).toBe('skipped: haproxy hidden by CTBRIDGE_TEST_HIDE (the load balancer); apt-get install haproxy runs these tests');
  });

  it('strict mode says it fails instead of skipping', () => {
    const found = lookup('squid', 'the NTLM proxy', { CTBRIDGE_TEST_HIDE: 'squid', CTBRIDGE_STRICT_TESTS: '1' });
    expect(found.path).toBeUndefined();
    expect(found.strict).toBe(true);
    expect(found.message).toMatch(/^squid hidden by CTBRIDGE_TEST_HIDE \(the NTLM proxy\): CTBRIDGE_STRICT_TESTS=1 fails instead of skipping; apt-get install squid$/);
  });

  it('an override variable wins over PATH (chromium: CTBRIDGE_TEST_CHROMIUM)', () => {
    const dir = fakeBin('my-chromium');
    expect(lookup('chromium', 'a test', { PATH: fakeBin('chromium'), CTBRIDGE_TEST_CHROMIUM: join(dir, 'my-chromium') }).path).toBe(join(dir, 'my-chromium'));
    expect(lookup('chromium', 'a test', { PATH: '', CTBRIDGE_TEST_CHROMIUM: join(dir, 'absent') }).path).toBeUndefined();
  });
});

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = fileURLToPath(new URL('../fixtures/system', import.meta.url));

/** A vitest of its own on test/fixtures/system/needs-haproxy.fixture.ts with the default reporter; its exit code and output. */
function runFixture(env: Record<string, string>): Promise<{ code: number; output: string }> {
  // Not this run's worker variables: the nested vitest is a run of its own.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && !k.startsWith('CTBRIDGE_')));
  const vitest = join(root, 'node_modules/vitest/vitest.mjs');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [vitest, 'run', '--root', fixtures, '--config', join(fixtures, 'vitest.config.ts'), '--reporter', 'default'],
      { cwd: fixtures, env: { ...base, NO_COLOR: '1', CI: '1', ...env }, timeout: 100_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

// Each case starts a vitest of its own (~3 s idle, ~20 s on a loaded 2-core machine): bounds against a hang only.
describe('needs(), in a real vitest run of a file whose tests need haproxy', { timeout: 120_000 }, () => {
  it('missing: the run passes, the tests are skipped, one line names the package and its apt-get install', async () => {
    const { code, output } = await runFixture({ CTBRIDGE_TEST_HIDE: 'haproxy' });
    expect(code, output).toBe(0);
    const lines = output.split('\n').filter((l) => l.startsWith('skipped: haproxy'));
    expect(lines, output).toEqual(['skipped: haproxy hidden by CTBRIDGE_TEST_HIDE (the load balancer of this fixture); apt-get install haproxy runs these tests']);
    expect(output).toMatch(/Tests\s+1 skipped/);
    // The file's hooks do not run either.
    expect(output).not.toContain('fixture beforeAll ran');
  });

  it('missing in strict mode (CTBRIDGE_STRICT_TESTS=1): the run fails and says why', async () => {
    const { code, output } = await runFixture({ CTBRIDGE_TEST_HIDE: 'haproxy', CTBRIDGE_STRICT_TESTS: '1' });
    expect(code, output).toBe(1);
    expect(output).toContain('haproxy hidden by CTBRIDGE_TEST_HIDE (the load balancer of this fixture): CTBRIDGE_STRICT_TESTS=1 fails instead of skipping; apt-get install haproxy');
    expect(output).toMatch(/Test Files\s+1 failed/);
  });

  it('present (a haproxy on PATH), strict or not: the test runs and passes', async () => {
    const { code, output } = await runFixture({ PATH: `${fakeBin('haproxy')}:${process.env.PATH ?? ''}`, CTBRIDGE_STRICT_TESTS: '1' });
    expect(code, output).toBe(0);
    expect(output).toMatch(/Tests\s+1 passed/);
    expect(output).not.toContain('skipped: haproxy');
  });
});
