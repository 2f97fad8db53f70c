/**
 * Whether failures at the command line show their stack trace: with
 * CTBRIDGE_DEBUG=1, or once a loaded config says log.level debug or trace.
 */
let debug = process.env.CTBRIDGE_DEBUG === '1';

export function isDebug(): boolean {
  return debug;
}

/** Turns stack traces on for a config whose log.level is debug or trace. */
export function debugFromLogLevel(level: string): void {
  if (level === 'debug' || level === 'trace') debug = true;
}
