/**
 * What `ctbridge agent service <action>` does, as data: an ordered list of
 * steps (folders, files, commands) that the platform modules build with pure
 * functions (unit-tested) and that service/index.ts either prints
 * (--dry-run) or carries out.
 */

export type ServiceAction = 'install' | 'uninstall' | 'start' | 'stop' | 'status';
export const SERVICE_ACTIONS: readonly ServiceAction[] = ['install', 'uninstall', 'start', 'stop', 'status'];

export type Step =
  | { kind: 'mkdir'; path: string }
  /** `content` is the text to write; `asset` names a bundled file (src/assets.ts) to copy. */
  | { kind: 'write'; path: string; content?: string; asset?: string; mode?: number; why: string }
  | { kind: 'remove'; path: string }
  /** `mayFail`: a failure is reported and the plan goes on (e.g. stopping a service that is not running). */
  | { kind: 'run'; argv: string[]; mayFail?: boolean; why: string };

export interface ServicePlan {
  steps: Step[];
  /** Printed after the steps: what to check next. */
  notes: string[];
}

/** How the service starts ctbridge: the executable and what comes before `agent --config …`. */
export interface CommandLine {
  executable: string;
  /** e.g. the path of bin/ctbridge.js when the executable is node; empty for ctbridge.exe / the Linux single executable. */
  prefixArgs: string[];
}

/** The stop timeout a service manager gets: the agent's drain (timeouts.shutdownGrace) plus 15 s, at least 45 s. */
export function stopTimeoutSeconds(shutdownGraceMs: number): number {
  return Math.max(45, Math.ceil(shutdownGraceMs / 1000) + 15);
}

/** One line per step, as --dry-run prints them. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'mkdir':
      return `create folder ${step.path}`;
    case 'write':
      return step.content !== undefined
        ? `write ${step.path}${step.mode !== undefined ? ` (mode ${step.mode.toString(8).padStart(4, '0')})` : ''}: ${step.why}\n${indent(step.content)}`
        : `write ${step.path}: ${step.why} (bundled ${step.asset})`;
    case 'remove':
      return `remove ${step.path}`;
    case 'run':
      return `run ${step.argv.map(quoteArg).join(' ')}${step.mayFail ? '   (may fail)' : ''}\n    # ${step.why}`;
  }
}

function indent(text: string): string {
  return text.replace(/\n$/, '').split('\n').map((l) => `    | ${l}`).join('\n');
}

/** Quote an argument for display (and for Windows command lines) when it has spaces or quotes. */
export function quoteArg(arg: string): string {
  return /[\s"]/.test(arg) || arg === '' ? `"${arg.replace(/"/g, '\\"')}"` : arg;
}
