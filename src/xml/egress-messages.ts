/**
 * The three provider → Client Tracker messages (docs/client-tracker-protocol.md
 * §4-5), the one table both sides use: the name in the provider's URL and
 * in the exchange's target (`/is_in_request`), the schema that checks it,
 * and the one root element it accepts.
 */
import type { MessageKind } from './kinds.js';

export const EGRESS_MESSAGES = {
  is_in_request: { kind: 'isInRequest', root: 'isInRequest', other: undefined },
  add_resource: { kind: 'pushResource', root: 'pushResource', other: 'remove_resource' },
  remove_resource: { kind: 'pushResource', root: 'pushResourceRemove', other: 'add_resource' },
} as const satisfies Record<string, { kind: MessageKind; root: string; other: string | undefined }>;

export type EgressMessageName = keyof typeof EGRESS_MESSAGES;

export function isEgressMessageName(name: string): name is EgressMessageName {
  return Object.hasOwn(EGRESS_MESSAGES, name);
}

/** The relay's cap on a message body: real messages are well under 1 KiB. */
export const MAX_EGRESS_BODY = 1024 * 1024;
/** Client Tracker's answers are small; more than this is not one (both sides cap it). */
export const MAX_CT_ANSWER = 10 * 1024 * 1024;
