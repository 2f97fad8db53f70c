/**
 * JSON-lines logging (pino). Callers redact URLs and headers themselves
 * (src/redact.ts); the `redact` paths here are a second line of defence for
 * secrets that slip into log objects under well-known field names.
 *
 * Every line starts with pino's base fields `level`, `time`, `pid`,
 * `hostname` (this machine's: IT greps for it) and `name`, then the bindings
 * of each `log.child({...})`, then the call's own fields. pino does not merge
 * them, so a call must not log a key that is already there: another host's
 * name is `agentHostname`, not `hostname`, and a child bound to `relay` or
 * `component` must not get a second one. The e2e helpers fail a test whose
 * processes write such a line (test/helpers/processes.ts). Strings that come
 * from the other side of a connection go through `untrusted()` (src/log-text.ts).
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { isCtbridgeError } from './errors.js';
import { REDACTED } from './redact.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: Level | 'silent';
  /** Process role, e.g. 'relay' or 'agent'; becomes the `name` field of every line. */
  name: string;
  /** Where JSON lines go; defaults to stdout (asynchronous, flushed on exit). */
  destination?: DestinationStream;
}

const SECRET_FIELDS = ['token', 'key', 'secret', 'password', 'pass', 'authorization', 'cookie'];
const SECRET_HEADERS = ['authorization', '"proxy-authorization"', 'cookie', '"set-cookie"', '"x-uctoken"'];

const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...['headers', 'req.headers', 'res.headers'].flatMap((h) =>
    SECRET_HEADERS.map((f) => (f.startsWith('"') ? `${h}[${f}]` : `${h}.${f}`)),
  ),
];

interface SerializedError {
  code?: unknown;
  message: string;
  hint?: string;
  stack?: string;
}

function serializeError(err: unknown, withStack: boolean): unknown {
  if (!(err instanceof Error)) return err;
  const out: SerializedError = { message: err.message };
  if (isCtbridgeError(err)) {
    out.code = err.code;
    if (err.hint) out.hint = err.hint;
  } else if ('code' in err && err.code !== undefined) {
    out.code = err.code;
  }
  if (withStack && err.stack) out.stack = err.stack;
  return out;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? bufferedStdout();
  const errSerializer = (err: unknown): unknown => serializeError(err, logger.isLevelEnabled('debug'));
  const logger: Logger = pino(
    {
      name: options.name,
      level: options.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { err: errSerializer, error: errSerializer },
    },
    destination,
  );
  return logger;
}

/**
 * stdout through sonic-boom, buffered: one write syscall per 4 KiB of log
 * lines instead of one per request, flushed at least every 200 ms and at exit.
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => {
    if (!(dest as unknown as { destroyed?: boolean }).destroyed) dest.flush();
  }, 200).unref();
  return dest;
}

/** Writes out anything still buffered; call before a deliberate process exit. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
