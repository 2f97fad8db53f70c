/**
 * Rewrite the server-called URLs of a registration answer (resourceInfoURL,
 * resourceTaxonomyInfoURL) to the relay's public URLs, changing only the
 * text of those elements: every other byte (declaration, BOM, whitespace,
 * comments, prefixes, other URLs) stays exactly as the provider sent it.
 */
import { decodeEntities, escapeText } from './escape.js';
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, XmlInvalidError } from './kinds.js';
import { assertNoDoctype } from './prepare.js';
import { scanElements, type ScannedElement } from './scan.js';
import { SERVER_CALLED_URL_ELEMENTS } from './registration-elements.js';

export { publicUrlFor, type PublicUrlOptions } from './public-url.js';

/** Elements the Client Tracker server itself calls, so they must go through the relay. */
export { SERVER_CALLED_URL_ELEMENTS };

export interface RewriteOptions {
  /** New URL for a decoded URL, or null to leave it as it is (reported in `skipped`). */
  rewriteUrl: (url: string) => string | null;
  /** Local names of the elements to rewrite. Default: SERVER_CALLED_URL_ELEMENTS. */
  elements?: readonly string[];
}

export interface RewriteResult {
  xml: string;
  rewritten: { element: string; from: string; to: string }[];
  /** Elements found but left as they were, and why. */
  skipped: { element: string; url: string; reason: string }[];
}

/** The namespaces a registration's elements may be in: the right one, the field's https quirk, or none. */
const NAMESPACES = new Set<string | null>([CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, null]);
const CDATA = /<!\[CDATA\[([\s\S]*?)\]\]>/g;

/** Decoded text of raw element content (text and CDATA only). */
function decodeContent(raw: string, element: string): string {
  let out = '';
  let last = 0;
  try {
    for (const m of raw.matchAll(CDATA)) {
      out += decodeEntities(raw.slice(last, m.index)) + (m[1] ?? '');
      last = m.index + m[0].length;
    }
    return out + decodeEntities(raw.slice(last));
  } catch (err) {
    if (err instanceof XmlInvalidError) throw new XmlInvalidError(`In <${element}>: ${err.message}`);
    throw err;
  }
}

/**
 * Throws XmlInvalidError on a DOCTYPE, mismatched tags, or a bad entity in a
 * URL element. A URL element holding markup other than text/CDATA, or empty,
 * is skipped. Surrounding whitespace inside the element is kept.
 */
export function rewriteRegistration(xmlText: string, options: RewriteOptions): RewriteResult {
  assertNoDoctype(xmlText);
  const names = new Set(options.elements ?? SERVER_CALLED_URL_ELEMENTS);
  const found: ScannedElement[] = [];
  scanElements(xmlText, (e) => {
    if (names.has(e.local) && NAMESPACES.has(e.namespace)) found.push(e);
  });
  found.sort((a, b) => a.contentStart - b.contentStart);

  const result: RewriteResult = { xml: '', rewritten: [], skipped: [] };
  let out = '';
  let last = 0;
  for (const e of found) {
    const raw = xmlText.slice(e.contentStart, e.contentEnd);
    if (e.parts.some((p) => p.type !== 'text' && p.type !== 'cdata')) {
      result.skipped.push({ element: e.local, url: raw, reason: 'holds elements, comments or processing instructions, not just a URL' });
      continue;
    }
    const lead = /^\s*/.exec(raw)?.[0] ?? '';
    const trail = /\s*$/.exec(raw.slice(lead.length))?.[0] ?? '';
    const from = decodeContent(raw.slice(lead.length, raw.length - trail.length), e.local).trim();
    const to = from === '' ? null : options.rewriteUrl(from);
    if (to === null) {
      result.skipped.push({ element: e.local, url: from, reason: from === '' ? 'is empty' : 'no rewrite for this URL (rewriteUrl returned null)' });
      continue;
    }
    out += xmlText.slice(last, e.contentStart) + lead + escapeText(to) + trail;
    last = e.contentEnd;
    result.rewritten.push({ element: e.local, from, to });
  }
  result.xml = out + xmlText.slice(last);
  return result;
}
