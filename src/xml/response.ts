/**
 * What every `response` root shares: the `<error>` alternative.
 */
import { buildDocument, text } from './build.js';
import { XmlInvalidError } from './kinds.js';
import { expectRoot, parseTree, type XNode } from './tree.js';

/** `<response><error>text</error></response>`: the request failed; `error` is shown to the user as-is. */
export interface ErrorResponse {
  kind: 'error';
  error: string;
}

/** Build `<response><error>text</error></response>`. Say in plain words what failed and where. */
export function buildErrorResponse(error: string): string {
  return buildDocument('response', { error: text(error) });
}

/**
 * Parse a `response` document: its root when it carries a payload, or the
 * ErrorResponse when it carries `<error>` (which must then be alone).
 */
export function parseResponse(input: string | Uint8Array): { root: XNode } | ErrorResponse {
  const root = parseTree(input);
  expectRoot(root, 'response');
  const error = root.children.find((c) => c.name === 'error');
  if (!error) return { root };
  if (root.children.length > 1) {
    throw new XmlInvalidError('<response> holds <error> and other elements; an error response holds only <error>');
  }
  return { kind: 'error', error: error.text };
}

/** The names of a response's payload elements, for messages that say what was found. */
export function describeChildren(node: XNode): string {
  return node.children.length === 0 ? 'nothing' : node.children.map((c) => `<${c.name}>`).join(', ');
}
