/**
 * Counters the clienttracker kind and egress report. Labels never hold a
 * secret: tunnel, code, reason, mode, message name, status.
 */
export interface ClientTrackerMetrics {
  increment(name: string, labels: Record<string, string>): void;
}

export const CT_METRICS = {
  /** A provider answer with a problem (labels: tunnel, reason: not-xml | not-ct | doctype | schema | namespace-quirk, mode). */
  answerProblems: 'ctbridge_ct_answer_problems_total',
  /** A bridge error shown to Client Tracker as XML (labels: tunnel, code). */
  errors: 'ctbridge_ct_errors_total',
  /** A registration whose URLs were rewritten (labels: tunnel). */
  rewrites: 'ctbridge_ct_registration_rewrites_total',
  /** A provider → CT message through the relay (labels: tunnel, message, status | unreachable | too-large). */
  egress: 'ctbridge_ct_egress_messages_total',
} as const;
