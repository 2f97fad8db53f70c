/**
 * What the inspector shows of a provider's answer on a clienttracker
 * tunnel: which message it was (registration, a fetch with its item id,
 * an error), whether it passed the schema (the first problem's line), and
 * whether the relay rewrote its URLs. An issue on an element named as a
 * secret (`key`) shows where, not what.
 */
import type { CtValidationMode } from '../../src/config/relay-tunnels.js';
import type { CtSummary } from '../../src/inspect/entry.js';
import { issueText } from '../../src/inspect/redact-entry.js';
import type { AnswerOutcome } from './answer.js';

const ITEM_ID = /<(?:[\w.-]+:)?id(?:\s[^>]*)?>([^<]{1,80})<\/(?:[\w.-]+:)?id\s*>/;

function messageName(outcome: AnswerOutcome): string {
  const d = outcome.detected;
  if (!d) return 'not a Client Tracker message';
  if (d.kind === 'registration') return 'registration';
  if (d.kind === 'resourceInfo') return d.payload === 'taxonomy' ? 'taxonomy fetch' : 'fetch';
  if (d.kind) return d.kind;
  if (d.payload === 'error') return 'error answer';
  return d.root === 'response' ? `response <${d.payload ?? ''}>` : `<${d.root}> document`;
}

/** The summary of an answer the relay checked (`body`: the decoded answer). */
export function answerSummary(outcome: AnswerOutcome, body: Buffer, mode: CtValidationMode): CtSummary {
  const message = messageName(outcome);
  const problem = outcome.findings.find((f) => f.reason !== 'namespace-quirk');
  const s: CtSummary = {
    message,
    validation: mode === 'off' ? 'not checked' : problem ? (problem.reason === 'not-xml' ? 'not xml' : 'invalid') : 'valid',
  };
  if (problem?.issues[0]) s.firstError = issueText(problem.issues[0]);
  if (message.endsWith('fetch')) {
    const id = ITEM_ID.exec(body.subarray(0, 64 * 1024).toString('utf8'))?.[1]?.trim();
    if (id) s.id = id.slice(0, 40);
  }
  if (outcome.detected?.kind === 'registration') s.rewritten = (outcome.rewrite?.rewritten.length ?? 0) > 0;
  return s;
}
