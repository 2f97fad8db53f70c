/**
 * Regression test for "slower after a burst of concurrent exchanges"
 * (docs/performance.md): V8's allocation-site pretenuring moved per-request
 * allocation sites to the old generation during a burst and never moved them
 * back. ctbridge turns it off (src/v8-flags.ts) before anything else runs.
 *
 * Each check runs a small Node process with --trace-pretenuring-statistics
 * whose objects from one site all survive young GCs: without the setting V8
 * decides to tenure that site (the control, so the check cannot pass
 * vacuously); with src/v8-flags imported it makes no pretenuring decision.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const FLAGS_MODULE = pathToFileURL(fileURLToPath(new URL('../../dist/src/v8-flags.js', import.meta.url))).href;
const MAIN_SOURCE = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

/** Keeps 300,000 objects from two literal sites alive, so young GCs see them all survive. */
const WORKLOAD = 'const keep = []; for (let i = 0; i < 300000; i++) keep.push({ i, inner: [i] }); console.log(keep.length);';

async function pretenuringTrace(importFlags: boolean): Promise<string> {
  const script = `${importFlags ? `await import(${JSON.stringify(FLAGS_MODULE)});\n` : ''}${WORKLOAD}`;
  const { stdout } = await run(process.execPath, ['--trace-pretenuring-statistics', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: 50_000,
  });
  expect(stdout).toContain('300000');
  return stdout;
}

describe('V8 allocation-site pretenuring (the post-burst slowdown)', () => {
  it('is decided on long-lived literals without src/v8-flags (control)', async () => {
    // Node 20/22's V8 decides "=> tenure" within this workload; Node 24's gets as far as "=> maybe tenure" (one step before).
    expect(await pretenuringTrace(false)).toMatch(/=> (maybe )?tenure/);
  });

  it('is off once src/v8-flags has run: no site is ever moved to the old generation', async () => {
    const trace = await pretenuringTrace(true);
    expect(trace).not.toMatch(/=> (maybe )?tenure/);
    expect(trace).not.toMatch(/pretenuring:/);
  });

  it('is set by the first import of the CLI entry point, before any other module runs', () => {
    const firstImport = /^import\s[^\n]*$/m.exec(readFileSync(MAIN_SOURCE, 'utf8'));
    expect(firstImport?.[0]).toBe("import '../src/v8-flags.js';");
  });
});
