/**
 * Registration rewrite for a clienttracker tunnel: the URLs the Client
 * Tracker server calls itself (resourceInfoURL, resourceTaxonomyInfoURL by
 * default; `clientTracker.rewrite` in relay.yaml) must point at the relay.
 *
 * The relay does not know the agent's target URL, so each intranet URL's own
 * origin is replaced by the tunnel's public URL and its path and query are
 * kept byte for byte (`[ID]` stays `[ID]`):
 *
 *   https://intranet.example/ct/ctfetch.asp?num=[ID]
 *     → https://relay.example/t/cioc/ct/ctfetch.asp?num=[ID]
 *
 * This assumes the tunnel's path space is the provider's own (agent target
 * without a base path). A provider under a base path the agent adds (target
 * `http://h/app`) writes `/app/...` URLs; they are rewritten as they are
 * (nothing is stripped), and the log line listing each rewrite shows it.
 */
import { publicUrlFor } from '../../src/xml/public-url.js';
import { rewriteRegistration, type RewriteResult } from '../../src/xml/registration-rewrite.js';

const ORIGIN = /^https?:\/\/[^/?#]*/i;

export interface RegistrationRewrite extends RewriteResult {
  /** The reason each skipped URL was left alone, in `skipped` order. */
  reasons: string[];
}

/**
 * Rewrites `elements` of a registration document (text as received).
 * Throws XmlInvalidError when the document cannot be scanned (DOCTYPE,
 * mismatched tags, bad entity in a URL element).
 */
export function rewriteRegistrationUrls(xml: string, elements: readonly string[], publicBase: string): RegistrationRewrite {
  const base = publicBase.replace(/\/+$/, '');
  const why = new Map<string, string>();
  const result = rewriteRegistration(xml, {
    elements,
    rewriteUrl: (url) => {
      const origin = ORIGIN.exec(url)?.[0];
      if (!origin) {
        why.set(url, 'not an absolute http(s) URL');
        return null;
      }
      if (url === base || url.startsWith(`${base}/`) || url.startsWith(`${base}?`)) {
        why.set(url, 'already the public URL');
        return null;
      }
      let to: string | null;
      try {
        to = publicUrlFor(url, { targetBase: origin, publicBase: base });
      } catch {
        to = null;
      }
      if (to === null) why.set(url, 'the URL has user info or an unusual host');
      return to;
    },
  });
  return { ...result, reasons: result.skipped.map((s) => why.get(s.url) ?? s.reason) };
}
