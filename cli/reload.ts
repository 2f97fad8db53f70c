/**
 * `ctbridge reload`: asks a running relay or agent to read its config file
 * again (POST /reload on its admin listener), the same as SIGHUP, which
 * Windows does not have. Prints what the process answered.
 *
 * Exit codes: 0 reloaded, 1 refused (invalid config, shutting down) or the
 * admin listener cannot be reached, 2 bad usage or config.
 */
import { AdminUnreachable, adminRequest, findAdminTarget, othersNote, unexpectedAnswer, whose, type AdminTargetOptions } from './admin-client.js';
import { processOutput, type Output } from './output.js';

export type ReloadOptions = AdminTargetOptions;

/** The `{ ok, message }` a /reload answer holds, if it is one. */
function reloadResult(body: string): { ok: boolean; message: string } | undefined {
  try {
    const v = JSON.parse(body) as { ok?: unknown; message?: unknown };
    return typeof v.ok === 'boolean' && typeof v.message === 'string' ? { ok: v.ok, message: v.message } : undefined;
  } catch {
    return undefined;
  }
}

export async function reloadCommand(opts: ReloadOptions, out: Output = processOutput): Promise<number> {
  const found = await findAdminTarget(opts);
  const target = found.target;
  if (found.others.length > 0) out.stderr(othersNote(found));
  let answer;
  try {
    // A reload re-reads files and may re-check every agent: allow it time.
    answer = await adminRequest(target, 'POST', '/reload', 60_000);
  } catch (err) {
    if (!(err instanceof AdminUnreachable)) throw err;
    out.stderr(`ctbridge: ${err.message}.\n${err.advice}\n`);
    return 1;
  }
  const result = reloadResult(answer.body);
  if ((answer.status !== 200 && answer.status !== 409) || !result) {
    out.stderr(`ctbridge: ${unexpectedAnswer(target, '/reload', answer)}\n`);
    return 1;
  }
  if (result.ok) {
    out.stdout(`${result.message}\n`);
    return 0;
  }
  out.stderr(`ctbridge: reload refused; ${whose(target.role)} keeps running with its current config:\n${result.message}\n`);
  return 1;
}
