/**
 * The tunnel configuration `ctbridge check` suggests for a provider: the
 * agent's tunnel (target = the intranet origin, allowPaths = exactly the
 * paths Client Tracker's servers call) and the relay's `clienttracker`
 * tunnel, plus the URL to register in Client Tracker.
 */
import { stringify } from 'yaml';
import { allowListPath, relayOf, splitHttpUrl, underBase } from './display.js';
import type { CheckItem, RelayInfo, Suggestion, UrlElementName } from './types.js';

export const DEFAULT_TUNNEL = 'provider';
export const EXAMPLE_RPC_URL = 'https://ct.example/rpc/';
export const EXAMPLE_RELAY = 'https://relay.example';
export const EXAMPLE_TARGET = 'http://intranet.example';

export interface SuggestInput {
  registrationUrl: string;
  relay: RelayInfo | null;
  /** --tunnel */
  tunnel?: string;
  /** The registration's URL elements (as held, trimmed); absent ones missing. */
  urls: Partial<Record<UrlElementName, string>>;
}

/** Tried in this order for the intranet origin. */
const ORIGIN_SOURCES: readonly UrlElementName[] = [
  'resourceInfoURL',
  'resourceTaxonomyInfoURL',
  'launchURL',
  'resourceSummaryURL',
  'resourceEmailURL',
];
const SERVER_CALLED: readonly UrlElementName[] = ['resourceInfoURL', 'resourceTaxonomyInfoURL'];

function intranetOrigin(input: SuggestInput): { origin: string; from: string } | null {
  const { relay, urls } = input;
  for (const element of ORIGIN_SOURCES) {
    const url = urls[element];
    const split = url ? splitHttpUrl(url) : null;
    if (url && split && !(relay && underBase(url, relay.publicBase))) return { origin: split.origin, from: element };
  }
  if (relay) return null;
  const reg = splitHttpUrl(input.registrationUrl);
  return reg ? { origin: reg.origin, from: 'the registration URL' } : null;
}

/** Path (no query) inside the tunnel for `url`, or null when it is elsewhere. */
function tunnelPath(url: string, relay: RelayInfo | null, target: string | null): string | null {
  if (relay && underBase(url, relay.publicBase)) {
    const inner = relayOf(url)?.inner ?? '/';
    return allowListPath(inner.replace(/[?#][\s\S]*$/, ''));
  }
  const split = splitHttpUrl(url);
  if (!split || (target !== null && split.origin !== target)) return null;
  return allowListPath(split.path);
}

export function suggestConfig(input: SuggestInput): Suggestion {
  const { relay, urls } = input;
  const tunnel = input.tunnel ?? relay?.tunnel ?? DEFAULT_TUNNEL;
  const items: CheckItem[] = [];
  const found = intranetOrigin(input);
  const target = found?.origin ?? null;
  if (!found) {
    items.push({
      level: 'warn',
      text: `could not tell the intranet origin (every URL points at the relay): replace ${EXAMPLE_TARGET} with the provider's own http(s)://host:port`,
    });
  }

  const registrationRest = (relay ? relayOf(input.registrationUrl)?.inner : splitHttpUrl(input.registrationUrl)?.rest) ?? '/';
  const allowPaths: string[] = [allowListPath(registrationRest.replace(/[?#][\s\S]*$/, ''))];
  const regSplit = splitHttpUrl(input.registrationUrl);
  if (!relay && regSplit && target && regSplit.origin !== target) {
    items.push({
      level: 'warn',
      text: `the registration URL is on ${regSplit.origin} but the intranet URLs are on ${target}: one tunnel has one target, so ${target} must also answer ${allowPaths[0]} (or make the provider write its URLs with the host name of the registration URL)`,
    });
  }
  for (const element of SERVER_CALLED) {
    const url = urls[element];
    if (!url) continue;
    const path = tunnelPath(url, relay, target);
    if (path === null) {
      const origin = splitHttpUrl(url)?.origin;
      items.push({
        level: 'warn',
        text: origin
          ? `${element} is on ${origin}, not on the tunnel's target ${target}: a tunnel reaches one target, so it needs a tunnel of its own (or the provider should use one host name)`
          : `${element} is not an absolute http(s) URL; its path is not in allowPaths`,
      });
    } else if (!allowPaths.includes(path)) {
      allowPaths.push(path);
    }
  }

  const agentYaml = stringify({ tunnels: { [tunnel]: { target: target ?? EXAMPLE_TARGET, allowPaths } } });
  const relayYaml = stringify({ tunnels: { [tunnel]: { kind: 'clienttracker', clientTracker: { rpcUrl: EXAMPLE_RPC_URL } } } });
  const registerUrl = `${relay?.origin ?? EXAMPLE_RELAY}/t/${tunnel}${registrationRest}`;
  if (found) items.push({ level: 'info', text: `target is the origin of ${found.from}` });
  items.push({ level: 'info', text: `in relay.yaml, set rpcUrl to your Client Tracker's RPC base URL (${EXAMPLE_RPC_URL} is a placeholder)` });
  items.push({ level: 'info', text: `register this URL in Client Tracker: ${registerUrl}${relay ? '' : ` (with your relay's public URL for ${EXAMPLE_RELAY})`}` });
  return { tunnel, target, allowPaths, agentYaml, relayYaml, registerUrl, items };
}
