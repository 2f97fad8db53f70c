/**
 * What the agent's and the relay's Prometheus metrics share
 * (agent/metrics.ts, relay/metrics.ts): the duration buckets, the same on
 * both sides so their latencies compare, and the `code` label.
 */
import { isErrorCode } from './errors.js';

/** Seconds: the buckets of every request duration histogram. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120];

/** The `code` label: a ctbridge error code, never a string from elsewhere. */
export const codeLabel = (code: string): string => (isErrorCode(code) ? code : 'other');
