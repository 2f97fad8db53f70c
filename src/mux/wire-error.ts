/**
 * Errors as data: a RESET frame carries `{code, message, hint?, params?}`,
 * so the receiver renders the failure for its own caller (JSON, or the
 * Client Tracker XML text) from the code and the numbers in `params`, never
 * by reading the English message. What arrives is checked and capped: it
 * comes from the other process.
 */
import { CtbridgeError, isErrorCode, type ErrorParams } from '../errors.js';

export interface WireError {
  code: string;
  message: string;
  hint?: string;
  params?: ErrorParams;
}

const MAX_MESSAGE = 1000;
const MAX_PARAM_TEXT = 300;

export function toWire(err: CtbridgeError): WireError {
  const wire: WireError = { code: err.code, message: err.message.slice(0, MAX_MESSAGE) };
  if (err.hint) wire.hint = err.hint.slice(0, MAX_MESSAGE);
  if (Object.keys(err.params).length > 0) wire.params = err.params;
  return wire;
}

function text(value: unknown, max: number): string | undefined {
  // Control characters would let a peer forge log lines or break a header.
  return typeof value === 'string' ? value.slice(0, max).replace(/[\u0000-\u001f\u007f]/g, ' ') : undefined;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function checkParams(value: unknown): ErrorParams {
  if (typeof value !== 'object' || value === null) return {};
  const v = value as Record<string, unknown>;
  const params: ErrorParams = {};
  const seconds = count(v.seconds);
  if (seconds !== undefined) params.seconds = seconds;
  const bytes = count(v.bytes);
  if (bytes !== undefined) params.bytes = bytes;
  if (v.body === 'request' || v.body === 'answer') params.body = v.body;
  const ctOrigin = text(v.ctOrigin, MAX_PARAM_TEXT);
  if (ctOrigin !== undefined) params.ctOrigin = ctOrigin;
  const problem = text(v.problem, MAX_PARAM_TEXT);
  if (problem !== undefined) params.problem = problem;
  return params;
}

/** The error a peer's RESET describes; anything malformed becomes CTB_PROTOCOL. */
export function fromWire(value: unknown, who: string): CtbridgeError {
  if (typeof value !== 'object' || value === null) return new CtbridgeError('CTB_PROTOCOL', `${who} reset the exchange with a malformed error`);
  const v = value as Record<string, unknown>;
  const message = text(v.message, MAX_MESSAGE) ?? '';
  if (!isErrorCode(v.code)) {
    const shown = text(v.code, 40) ?? typeof v.code;
    return new CtbridgeError('CTB_PROTOCOL', `${who} reset the exchange with an unknown error code ${shown}${message ? `: ${message}` : ''}`);
  }
  const hint = text(v.hint, MAX_MESSAGE);
  return new CtbridgeError(v.code, message, { params: checkParams(v.params), ...(hint ? { hint } : {}) });
}
