/**
 * What happens to every XML input before any parser sees it: decode bytes,
 * drop a byte-order mark and leading blank lines (producers in the field emit
 * both; an XML declaration must otherwise be the first byte), and refuse
 * DOCTYPE / ENTITY declarations outright, so that no parser ever expands an
 * entity or loads an external file.
 */
import { XmlInvalidError } from './kinds.js';

export interface PreparedXml {
  /** The document from its first `<` on. */
  text: string;
  /** Lines dropped in front of `text`: add to a line number in `text` to get the line as received. */
  lineOffset: number;
}

const NEWLINE = /\r\n|\r|\n/g;
const LEADING = /^\uFEFF?[ \t\r\n]*/;
const DECLARATION = /^[ \t\r\n]*<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;
/**
 * Refused anywhere in the document (even inside a comment or CDATA): a Client
 * Tracker message never needs one, and a whole-document check stays simple
 * and cannot be fooled by a parser that reads declarations after the root.
 */
const MARKUP_DECLARATION = /<!(DOCTYPE|ENTITY)/i;

function countLines(text: string): number {
  return text.match(NEWLINE)?.length ?? 0;
}

/** Bytes → text, honouring an encoding declaration (UTF-8 by default). */
function decodeBytes(input: Uint8Array): string {
  const hasBom = input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf;
  const bytes = hasBom ? input.subarray(3) : input;
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 256));
  const label = DECLARATION.exec(head)?.[1] ?? 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw new XmlInvalidError(`The XML declaration names encoding '${label}', which is not supported; send UTF-8`, [
      { line: 1, message: `unsupported encoding '${label}'` },
    ]);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new XmlInvalidError(`The document is not valid ${label} text; send UTF-8`, [
      { line: 1, message: `bytes are not valid ${label}` },
    ]);
  }
}

/** Throws XmlInvalidError if `text` holds a DOCTYPE or ENTITY declaration. */
export function assertNoDoctype(text: string, lineOffset = 0): void {
  const m = MARKUP_DECLARATION.exec(text);
  if (!m) return;
  const line = lineOffset + countLines(text.slice(0, m.index)) + 1;
  const what = m[1].toUpperCase();
  const message = `<!${what} declarations are refused: they can define entities that expand without bound or load external files, and Client Tracker messages never need one`;
  throw new XmlInvalidError(`Line ${line}: ${message}`, [{ line, message }]);
}

export function prepareXml(input: string | Uint8Array): PreparedXml {
  const raw = typeof input === 'string' ? input : decodeBytes(input);
  const leading = LEADING.exec(raw)?.[0] ?? '';
  const lineOffset = countLines(leading);
  const text = raw.slice(leading.length);
  if (text === '') {
    throw new XmlInvalidError('The XML document is empty', [{ line: lineOffset + 1, message: 'the document is empty' }]);
  }
  assertNoDoctype(text, lineOffset);
  return { text, lineOffset };
}
