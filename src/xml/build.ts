/**
 * Serialising Client Tracker messages: XML declaration, the Client Tracker
 * default namespace on the root, two-space indentation, UTF-8.
 *
 * fast-xml-parser's builder lays out the elements; values are escaped here
 * (its own escaping leaves CR, TAB/LF in attributes and characters XML
 * cannot carry as they are).
 */
import { XMLBuilder } from 'fast-xml-parser';
import { escapeAttr, escapeText } from './escape.js';
import { CT_NAMESPACE } from './kinds.js';

/**
 * An element's content: text (already escaped), nested elements (an array
 * repeats the element), or '' for an empty element (`<no/>`). Keys starting
 * with `@_` are attributes.
 */
export type Content = string | Elements;
export interface Elements {
  [name: string]: Content | Content[];
}

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  processEntities: false,
  suppressEmptyNode: true,
  format: true,
  indentBy: '  ',
});

/** Text for a leaf element (escaped). */
export function text(value: string): string {
  return escapeText(value);
}

/** Attributes object for an element (escaped). */
export function attrs(values: Record<string, string>): Elements {
  const out: Elements = {};
  for (const [k, v] of Object.entries(values)) out[`@_${k}`] = escapeAttr(v);
  return out;
}

/** Leaf elements, one per id. */
export function ids(values: readonly string[]): string[] {
  return values.map(text);
}

/** A whole document: declaration + root in the Client Tracker namespace. */
export function buildDocument(root: string, content: Elements): string {
  return XML_DECLARATION + builder.build({ [root]: { '@_xmlns': CT_NAMESPACE, ...content } });
}
