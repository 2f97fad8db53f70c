/**
 * A small element tree read with fast-xml-parser, for the message parsers.
 * Namespace prefixes are dropped (names are local names); whether the
 * namespace is the Client Tracker one is the validator's and detect.ts's job.
 *
 * Text is kept exactly as sent, after entity decoding and XML's own
 * line-end normalisation: nothing is trimmed, so an id " 0123 " stays
 * " 0123 " (ids are compared as exact strings).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decodeEntities } from './escape.js';
import { XmlInvalidError } from './kinds.js';
import { prepareXml } from './prepare.js';

export interface XNode {
  name: string;
  attrs: Record<string, string>;
  children: XNode[];
  /** Concatenated character data (text and CDATA) directly inside this element. */
  text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
});

type OrderedEntry = Record<string, unknown>;

function normalizeLineEnds(raw: string): string {
  return raw.replace(/\r\n?/g, '\n');
}

function decodeIn(element: string, raw: string): string {
  try {
    return decodeEntities(raw);
  } catch (err) {
    if (err instanceof XmlInvalidError) throw new XmlInvalidError(`In <${element}>: ${err.message}`);
    throw err;
  }
}

function toNode(name: string, entries: OrderedEntry[], attrs: Record<string, unknown> | undefined): XNode {
  const node: XNode = { name, attrs: Object.create(null) as Record<string, string>, children: [], text: '' };
  for (const [key, value] of Object.entries(attrs ?? {})) {
    // Attribute-value normalisation: literal TAB/LF/CR become spaces, references survive.
    node.attrs[key] = decodeIn(name, String(value).replace(/\r\n|[\t\n\r]/g, ' '));
  }
  for (const entry of entries) {
    for (const [key, value] of Object.entries(entry)) {
      if (key === ':@') continue;
      if (key === '#text') node.text += decodeIn(name, normalizeLineEnds(String(value)));
      else if (key === '#cdata') node.text += (value as OrderedEntry[]).map((c) => String(c['#text'] ?? '')).join('');
      else node.children.push(toNode(key, value as OrderedEntry[], entry[':@'] as Record<string, unknown> | undefined));
    }
  }
  return node;
}

/** Parse a document into its root element. Throws XmlInvalidError (with a line) if it is not well-formed. */
export function parseTree(input: string | Uint8Array): XNode {
  const { text, lineOffset } = prepareXml(input);
  const check = XMLValidator.validate(text);
  if (check !== true) {
    const line = check.err.line + lineOffset;
    throw new XmlInvalidError(`Line ${line}: ${check.err.msg}`, [{ line, message: check.err.msg }]);
  }
  const top = parser.parse(text) as OrderedEntry[];
  const roots = top.filter((e) => !('#text' in e));
  const root = roots[0];
  if (roots.length !== 1 || root === undefined) {
    throw new XmlInvalidError('The document must hold exactly one root element');
  }
  const name = Object.keys(root).find((k) => k !== ':@') as string;
  return toNode(name, root[name] as OrderedEntry[], root[':@'] as Record<string, unknown> | undefined);
}

export function children(node: XNode, name: string): XNode[] {
  return node.children.filter((c) => c.name === name);
}

export function child(node: XNode, name: string): XNode | undefined {
  return node.children.find((c) => c.name === name);
}

export function requireChild(node: XNode, name: string): XNode {
  const found = child(node, name);
  if (!found) throw new XmlInvalidError(`<${node.name}> has no <${name}> element`);
  return found;
}

/** Throws unless the root has one of the expected names. */
export function expectRoot(node: XNode, ...names: string[]): void {
  if (!names.includes(node.name)) {
    throw new XmlInvalidError(`Expected root element <${names.join('> or <')}>, found <${node.name}>`);
  }
}
