/**
 * XML text escaping and entity decoding. Only the five predefined entities
 * and character references exist in Client Tracker messages (DOCTYPEs are
 * refused, see prepare.ts), so decoding needs no entity table.
 */
import { XmlInvalidError } from './kinds.js';

/** Characters XML 1.0 cannot carry at all; builders replace them with U+FFFD. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

const PREDEFINED = new Map([['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['apos', "'"]]);

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Text content: `&`, `<`, `>` and CR (so it survives line-end normalisation). */
export function escapeText(value: string): string {
  return value
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r/g, '&#13;');
}

/** Attribute values (double-quoted): also quotes, and TAB/LF/CR, which attribute normalisation would turn into spaces. */
export function escapeAttr(value: string): string {
  return escapeText(value)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;');
}

/**
 * Replace entity and character references; throws XmlInvalidError on an
 * unknown entity or a bare `&`. Messages never quote the text (it may be a key).
 */
export function decodeEntities(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&<\s]*);?/g, (whole: string, ref: string) => {
    if (!whole.endsWith(';') || ref === '') {
      throw new XmlInvalidError("A bare '&' (not starting an entity or character reference): write it as &amp;");
    }
    if (ref.startsWith('#')) {
      const hex = ref[1] === 'x';
      const digits = ref.slice(hex ? 2 : 1);
      const cp = /^[0-9]+$/.test(digits) || (hex && /^[0-9A-Fa-f]+$/.test(digits)) ? parseInt(digits, hex ? 16 : 10) : NaN;
      if (!isXmlChar(cp)) throw new XmlInvalidError('A character reference names a character XML cannot carry');
      return String.fromCodePoint(cp);
    }
    const value = PREDEFINED.get(ref);
    if (value === undefined) {
      throw new XmlInvalidError('An entity reference is not defined: only &amp; &lt; &gt; &quot; &apos; and character references are allowed');
    }
    return value;
  });
}
