/**
 * Every failure ctbridge reports has a stable code (undici style): users grep
 * logs and monitoring for the code, docs/errors.md documents each one, and the
 * relay maps each to an HTTP status from the single table below.
 *
 * Error messages are shown to people (IT admins, provider developers, CT
 * users): say what failed, where, and what to do. Never put a secret in one.
 */

export interface ErrorInfo {
  /** HTTP status the relay (or agent egress) answers with for this failure. */
  status: number;
  /** One line for the docs/errors.md table: what happened. */
  summary: string;
}

/** The error → HTTP status table. Keep docs/errors.md, "Error codes", in step (a test checks). */
export const ERROR_CODES = {
  CTB_CONFIG_INVALID: { status: 500, summary: 'A config file is missing, unreadable, or has a wrong key or value, or a listen address cannot be bound.' },
  CTB_TOKEN_INVALID: { status: 401, summary: 'The agent token is missing, malformed, tampered with, expired, signed with a key the relay does not have, revoked, or for another relay.' },
  CTB_TUNNEL_NOT_ALLOWED: { status: 403, summary: "The agent offered a tunnel its token does not list, or a stream asked for a tunnel the agent's config does not list." },
  CTB_TUNNEL_UNKNOWN: { status: 404, summary: 'No tunnel of that name exists on this relay.' },
  CTB_PATH_NOT_ALLOWED: { status: 404, summary: "The path is not in the tunnel's path allow-list." },
  CTB_SOURCE_NOT_ALLOWED: { status: 403, summary: "The caller's address is not in the tunnel's allowFrom list." },
  CTB_AGENT_NOT_CONNECTED: { status: 502, summary: 'No agent serving this tunnel is connected to the relay.' },
  CTB_AGENT_DISCONNECTED: { status: 502, summary: 'The agent connection dropped while the request was in flight.' },
  CTB_AGENT_BUSY: { status: 503, summary: 'Every agent for this tunnel is at its concurrent-stream limit; retry after the Retry-After delay.' },
  CTB_TARGET_UNREACHABLE: { status: 502, summary: 'The agent could not connect to the intranet target (refused, DNS, TLS).' },
  CTB_TARGET_TIMEOUT: { status: 504, summary: 'The intranet target did not connect or answer within the configured timeout.' },
  CTB_TARGET_BAD_RESPONSE: { status: 502, summary: "The intranet target's answer is not valid HTTP (malformed, headers too large, body shorter or longer than announced)." },
  CTB_REQUEST_TIMEOUT: { status: 504, summary: 'The whole request took longer than the configured request timeout.' },
  CTB_BODY_TOO_LARGE: { status: 413, summary: 'The request or response body is larger than the configured limit.' },
  CTB_BAD_REQUEST: { status: 400, summary: 'The request is malformed (bad path encoding, path traversal, bad XML).' },
  CTB_XML_INVALID: { status: 400, summary: 'An XML message does not conform to its Client Tracker schema, or has a DOCTYPE.' },
  CTB_UPSTREAM_INVALID: { status: 502, summary: 'The provider answered something that is not the XML Client Tracker expects.' },
  CTB_CT_UNREACHABLE: { status: 502, summary: "The relay could not reach the Client Tracker RPC URL, or CT's answer did not come back in full." },
  CTB_SHUTTING_DOWN: { status: 503, summary: 'The relay or agent is shutting down; the request was not started.' },
  CTB_CANCELLED: { status: 499, summary: 'The caller went away (or the other side gave up) before the answer was complete; the exchange was cancelled. Seen in logs only.' },
  CTB_PROTOCOL: { status: 502, summary: 'The relay and agent disagree on the tunnel protocol (version mismatch or corrupt frame).' },
  CTB_PROXY_AUTH: { status: 502, summary: 'The corporate forward proxy refused the agent (HTTP 407: wrong or missing proxy credentials).' },
  CTB_RELAY_UNREACHABLE: { status: 502, summary: 'The agent could not reach the relay (DNS, refused, TLS, proxy).' },
  CTB_NODE_REFUSED: { status: 403, summary: "A relay node's cluster listener refused a connection: its address is not in cluster.peers, or it is not a node link (path, protocol version)." },
  CTB_RELAY_BUSY: { status: 503, summary: 'The relay node is admitting as many agent connections at once as it takes (a reconnect storm); the agent connects again after the Retry-After delay it is sent.' },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/**
 * Numbers and names an error carries as data, so each side can render it
 * for its own caller (JSON, or the Client Tracker XML text) without reading
 * the English message. Never a secret.
 */
export interface ErrorParams {
  /** A time limit that was exceeded, in seconds. */
  seconds?: number;
  /** A size limit that was exceeded, in bytes. */
  bytes?: number;
  /** Whose body was too large. */
  body?: 'request' | 'answer';
  /** Client Tracker's origin (scheme, host, port) for CTB_CT_UNREACHABLE. */
  ctOrigin?: string;
  /** A short, secret-free description of the exact problem ("connection refused"). */
  problem?: string;
}

export class CtbridgeError extends Error {
  readonly code: ErrorCode;
  /** What the user should do about it; appended to messages shown to people. */
  readonly hint: string | undefined;
  /** Numbers and names for renderers (see ErrorParams). */
  readonly params: Readonly<ErrorParams>;

  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown; params?: ErrorParams }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CtbridgeError';
    this.code = code;
    this.hint = options?.hint;
    this.params = options?.params ?? {};
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** Message plus hint, for people. */
  get userMessage(): string {
    return this.hint ? `${this.message}. ${this.hint}` : this.message;
  }
}

/** A config file problem: names the file, the key path, and what was expected. */
export class ConfigError extends CtbridgeError {
  readonly file: string;
  readonly key: string;

  constructor(file: string, key: string, message: string) {
    super('CTB_CONFIG_INVALID', `${file}: ${key ? `${key}: ` : ''}${message}`);
    this.name = 'ConfigError';
    this.file = file;
    this.key = key;
  }
}

/** Several config problems found in one pass, reported together. */
export class ConfigErrors extends CtbridgeError {
  readonly errors: readonly ConfigError[];

  constructor(errors: readonly ConfigError[]) {
    super('CTB_CONFIG_INVALID', errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
    this.errors = errors;
  }
}

export function isCtbridgeError(err: unknown): err is CtbridgeError {
  return err instanceof CtbridgeError;
}
