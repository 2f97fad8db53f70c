/**
 * `ctbridge check <registration-url> [--id ID] [--taxonomy-ids A,B] [--tunnel NAME] [--json]`:
 * for IT admins onboarding a Client Tracker provider. Plays the Client
 * Tracker server against the provider (directly, or through a relay tunnel
 * URL), validates every answer against the schemas, and suggests the tunnel
 * configuration. Exit code: 0 all conforms (warnings allowed), 1 something
 * failed, 2 bad usage.
 */
import { isCtbridgeError } from '../../src/errors.js';
import { formatJson, formatText } from './report.js';
import { CheckUsageError, buildReport } from './run-check.js';
import type { CheckOptions, CheckReport } from './types.js';
import { processOutput, type Output } from '../output.js';

export { CheckUsageError } from './run-check.js';
export { createFetchText, fetchText, FetchTextError, DEFAULT_TIMEOUT_MS } from './fetch-text.js';
export { formatJson, formatText } from './report.js';
export { suggestConfig } from './suggest.js';
export type * from './types.js';

/** Run the check. Throws CheckUsageError for bad options (not a URL, bad tunnel name, empty id). */
export async function runCheck(options: CheckOptions): Promise<{ ok: boolean; report: CheckReport }> {
  const report = await buildReport(options);
  return { ok: report.ok, report };
}

/** The command's arguments as yargs hands them over. */
export interface CheckArgv {
  registrationUrl: string;
  id?: string | undefined;
  taxonomyIds?: string | undefined;
  tunnel?: string | undefined;
  json?: boolean | undefined;
}

export interface CheckIo extends Output {
  fetchText?: CheckOptions['fetchText'];
}

/** Prints the report (text or JSON) and returns the exit code. */
export async function checkCommand(argv: CheckArgv, io: CheckIo = processOutput): Promise<number> {
  const options: CheckOptions = { registrationUrl: String(argv.registrationUrl ?? '') };
  if (argv.id !== undefined) options.id = String(argv.id);
  if (argv.taxonomyIds !== undefined) {
    options.taxonomyIds = String(argv.taxonomyIds)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (argv.tunnel !== undefined) options.tunnel = argv.tunnel;
  if (io.fetchText) options.fetchText = io.fetchText;
  try {
    const { ok, report } = await runCheck(options);
    io.stdout(argv.json ? formatJson(report) : formatText(report));
    return ok ? 0 : 1;
  } catch (err) {
    if (err instanceof CheckUsageError || (isCtbridgeError(err) && err.code === 'CTB_CONFIG_INVALID')) {
      io.stderr(`ctbridge check: ${err.userMessage}\n`);
      return 2;
    }
    throw err;
  }
}
