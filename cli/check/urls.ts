/**
 * The URL elements of a registration: who calls each (Client Tracker's
 * servers, or a user's browser), what a relay does with it, and whether the
 * placeholders Client Tracker substitutes are where they must be.
 */
import { SERVER_CALLED_URL_ELEMENTS } from '../../src/xml/registration-rewrite.js';
import { displayUrl, placeholdersIn, splitHttpUrl, underBase } from './display.js';
import type { CheckItem, RelayInfo, UrlElementName, UrlElementReport } from './types.js';

/** Placeholders each element is meant to hold; `required` ones missing are an error for server-called URLs. */
const EXPECTED: Record<UrlElementName, { expected: readonly string[]; purpose: string }> = {
  resourceInfoURL: { expected: ['[ID]'], purpose: 'Client Tracker puts the id of the item to fetch there' },
  resourceTaxonomyInfoURL: { expected: ['[IDS]'], purpose: 'Client Tracker puts the comma-separated ids there' },
  resourceSummaryURL: { expected: ['[IDS]'], purpose: 'Client Tracker puts the comma-separated ids there' },
  resourceEmailURL: { expected: ['[IDS]'], purpose: 'Client Tracker puts the comma-separated ids there' },
  launchURL: {
    expected: ['[CTID]', '[LOGIN]', '[KEY]'],
    purpose: 'the provider needs ctid, login and key to call isInRequest and pushResource for the user',
  },
};

const KNOWN = new Set(['[ID]', '[IDS]', '[CTID]', '[LOGIN]', '[KEY]']);
const ENCODED = /%5B(ID|IDS|CTID|LOGIN|KEY)%5D/gi;

function list(names: readonly string[]): string {
  return names.join(', ');
}

function whoCalls(element: UrlElementName, url: string, relay: RelayInfo | null): CheckItem {
  const server = SERVER_CALLED_URL_ELEMENTS.includes(element);
  const atRelay = relay !== null && underBase(url, relay.publicBase);
  if (server) {
    if (atRelay) {
      return { level: 'ok', text: `called by Client Tracker's servers; points at the relay tunnel ${relay.publicBase} (rewritten by the relay), so they can reach it` };
    }
    if (relay) {
      return {
        level: 'warn',
        text:
          `called by Client Tracker's servers, but as served through the relay it still points at the intranet, which they cannot reach: ` +
          `make the relay tunnel "${relay.tunnel}" \`kind: clienttracker\`, which rewrites it to the tunnel's public URL`,
      };
    }
    return { level: 'info', text: "called by Client Tracker's servers: would be rewritten to the tunnel's public URL by a relay `clienttracker` tunnel" };
  }
  if (atRelay) return { level: 'info', text: "opened by the user's browser; points at the relay tunnel (clientTracker.rewrite lists it)" };
  return { level: 'info', text: "opened by the user's browser: left pointing at the intranet (a relay does not rewrite it by default)" };
}

function placeholderItems(element: UrlElementName, url: string, found: string[], server: boolean): CheckItem[] {
  const items: CheckItem[] = [];
  const { expected, purpose } = EXPECTED[element];
  const encoded = [...new Set([...url.matchAll(ENCODED)].map((m) => m[0]))];
  if (encoded.length) {
    items.push({
      level: server ? 'error' : 'warn',
      text: `holds ${list(encoded)}: a percent-encoded placeholder, which Client Tracker does not substitute; write it literally (${list(encoded.map((e) => `[${e.slice(3, -3).toUpperCase()}]`))})`,
    });
  }
  const present = expected.filter((p) => found.includes(p));
  // One reported as percent-encoded above is not reported again as missing.
  const missing = expected.filter((p) => !found.includes(p) && !encoded.some((e) => `[${e.slice(3, -3).toUpperCase()}]` === p));
  if (present.length) items.push({ level: 'ok', text: `has ${list(present)}` });
  if (missing.length) {
    items.push({
      level: server ? 'error' : 'warn',
      text: `lacks ${list(missing)}: ${purpose}`,
    });
  }
  for (const p of found) {
    if (expected.includes(p)) continue;
    items.push({
      level: 'warn',
      text: KNOWN.has(p)
        ? `holds ${p}, which belongs in ${p === '[ID]' ? 'resourceInfoURL' : p === '[IDS]' ? 'the list URLs' : 'launchURL'}; Client Tracker is not documented to substitute it in ${element}`
        : `holds ${p}, which is not a Client Tracker placeholder (they are upper case: ${list([...KNOWN])}); it is sent as it is`,
    });
  }
  return items;
}

/** Report one URL element (value as the registration holds it). */
export function checkUrlElement(element: UrlElementName, url: string, relay: RelayInfo | null): UrlElementReport {
  const server = SERVER_CALLED_URL_ELEMENTS.includes(element);
  const found = placeholdersIn(url);
  const items: CheckItem[] = [];
  if (url === '') {
    items.push({ level: server || element === 'launchURL' ? 'error' : 'warn', text: 'is empty' });
  } else if (!splitHttpUrl(url)) {
    items.push({ level: server ? 'error' : 'warn', text: 'is not an absolute http:// or https:// URL' });
  } else {
    items.push(whoCalls(element, url, relay));
  }
  if (url !== '') items.push(...placeholderItems(element, url, found, server));
  return { element, url: displayUrl(url), calledBy: server ? 'server' : 'browser', placeholders: found, items };
}
