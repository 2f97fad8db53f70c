/**
 * Tests that need a system package (Debian's chromium, tinyproxy, haproxy,
 * squid, wrk). On a machine without it the tests skip, with one line that
 * names the package and the `apt-get install` that enables them, so
 * `npm test` on a fresh checkout ends green. With CTBRIDGE_STRICT_TESTS=1
 * (.ci/run sets it) a missing package fails the file instead, so CI cannot
 * pass by skipping.
 *
 *     const haproxy = needs('haproxy', 'the load balancer in front of the relay cluster');
 *     haproxy.describe('relay cluster behind HAProxy', () => { ... });
 *     // haproxy.path: the executable to run
 *
 * CTBRIDGE_TEST_HIDE=chromium,haproxy makes the helper act as if those
 * packages were missing (to see the skip, and the strict failure, on a
 * machine that has them).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';

export type SystemPackage = 'chromium' | 'tinyproxy' | 'haproxy' | 'squid' | 'wrk';

/** Each package's executable, and an environment variable that names another one. */
const PACKAGES: Record<SystemPackage, { executable: string; override?: string }> = {
  chromium: { executable: 'chromium', override: 'CTBRIDGE_TEST_CHROMIUM' },
  tinyproxy: { executable: 'tinyproxy' },
  haproxy: { executable: 'haproxy' },
  squid: { executable: 'squid' },
  wrk: { executable: 'wrk' },
};

/** Debian puts daemons in sbin, which a user's PATH may lack. */
const KNOWN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export type Env = Readonly<Record<string, string | undefined>>;

export interface Lookup {
  pkg: SystemPackage;
  /** The executable, when the package is there. */
  path: string | undefined;
  /** Missing and CTBRIDGE_STRICT_TESTS=1: the tests fail instead of skipping. */
  strict: boolean;
  /** For a missing package: the one line that says what skips and how to enable it. */
  message: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `pkg`'s executable is (the override variable, PATH, then the usual directories), or undefined; pure apart from the file system. */
export function lookup(pkg: SystemPackage, purpose: string, env: Env = process.env): Lookup {
  const { executable: name, override } = PACKAGES[pkg];
  const hidden = (env.CTBRIDGE_TEST_HIDE ?? '').split(',').map((s) => s.trim()).includes(pkg);
  const strict = env.CTBRIDGE_STRICT_TESTS === '1';
  let path: string | undefined;
  if (!hidden) {
    const overridden = override ? env[override] : undefined;
    const candidates = overridden ? [overridden] : [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...KNOWN_DIRS].map((d) => join(d, name));
    path = candidates.find(executable);
  }
  const why = hidden ? 'hidden by CTBRIDGE_TEST_HIDE' : 'not installed';
  const message = strict
    ? `${pkg} ${why} (${purpose}): CTBRIDGE_STRICT_TESTS=1 fails instead of skipping; apt-get install ${pkg}`
    : `skipped: ${pkg} ${why} (${purpose}); apt-get install ${pkg} runs these tests`;
  return { pkg, path, strict, message };
}

export interface Need {
  /** The executable (empty when missing: the tests that use it do not run). */
  path: string;
  /** `describe`, or when the package is missing a describe.skip whose name carries the message. */
  describe: (name: string, body: () => void) => void;
}

/**
 * The tests of this file need `pkg`. Missing: prints the one line and
 * returns a `describe` that skips (its name ends with the line, so every
 * reporter shows it); in strict mode throws, which fails the file.
 */
export function needs(pkg: SystemPackage, purpose: string, env: Env = process.env): Need {
  const found = lookup(pkg, purpose, env);
  if (found.path) return { path: found.path, describe: (name, body) => describe(name, body) };
  if (found.strict) throw new Error(found.message);
  // stderr of the test process: vitest shows it under the file's name, also in the default reporter.
  console.warn(found.message);
  return { path: '', describe: (name, body) => describe.skip(`${name} [${found.message}]`, body) };
}
