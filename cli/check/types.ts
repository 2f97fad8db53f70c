/**
 * The report `ctbridge check` builds: every step as a list of ✓/⚠/✗ items,
 * plus the structured facts (URLs, HTTP exchanges, parsed values) a script
 * reading `--json` needs. Every URL in it is already redacted for display.
 */
import type { XmlIssue } from '../../src/xml/kinds.js';
import type { ResourceInfo, TaxonomyEntry } from '../../src/xml/messages.js';

/** ok ✓, warn ⚠ (allowed: exit 0), error ✗ (exit 1), info • (a fact or hint). */
export type Level = 'ok' | 'warn' | 'error' | 'info';

export interface CheckItem {
  level: Level;
  text: string;
  /** Schema messages, when the item is about XML validation. */
  issues?: XmlIssue[];
}

/** One GET the check made, as seen from outside. */
export interface HttpExchange {
  url: string;
  status?: number;
  contentType?: string;
  bytes?: number;
  ms?: number;
  /** Where a 3xx answer pointed (not followed). */
  location?: string;
  /** Why the request failed before any answer (connection refused, timeout, TLS…). */
  error?: string;
}

export interface Step {
  items: CheckItem[];
  request?: HttpExchange;
}

export type UrlElementName =
  | 'launchURL'
  | 'resourceInfoURL'
  | 'resourceSummaryURL'
  | 'resourceEmailURL'
  | 'resourceTaxonomyInfoURL';

export interface UrlElementReport {
  element: UrlElementName;
  url: string;
  /** 'server': Client Tracker's servers GET it; 'browser': a CT user's browser opens it. */
  calledBy: 'server' | 'browser';
  /** Placeholders found, e.g. ["[ID]"]. */
  placeholders: string[];
  items: CheckItem[];
}

export interface RelayInfo {
  /** e.g. https://relay.example */
  origin: string;
  tunnel: string;
  /** e.g. https://relay.example/t/cioc */
  publicBase: string;
}

export interface FetchStep extends Step {
  element: 'resourceInfoURL' | 'resourceTaxonomyInfoURL';
  /** The element's URL as the registration holds it (redacted). */
  template: string;
  /** The URL fetched, after substitution (redacted). */
  fetchedUrl: string;
  /** Fetched through the relay tunnel with the intranet origin swapped for the relay's. */
  throughRelay: boolean;
}

export interface ResourceInfoStep extends FetchStep {
  id: string;
  resourceInfo?: ResourceInfo;
}

export interface TaxonomyStep extends FetchStep {
  ids: string[];
  entries?: TaxonomyEntry[];
}

export interface Suggestion {
  tunnel: string;
  /** Origin of the intranet URLs; null when the check could not tell. */
  target: string | null;
  allowPaths: string[];
  /** agent.yaml snippet. */
  agentYaml: string;
  /** relay.yaml snippet. */
  relayYaml: string;
  /** The URL to enter in Client Tracker as the registration URL. */
  registerUrl: string;
  items: CheckItem[];
}

export interface CheckReport {
  ok: boolean;
  errors: number;
  warnings: number;
  registrationUrl: string;
  /** Set when the registration URL is a relay tunnel URL (`/t/<tunnel>/...`). */
  relay: RelayInfo | null;
  registration: Step & { name?: string };
  urls: UrlElementReport[];
  fetch: ResourceInfoStep | null;
  taxonomy: TaxonomyStep | null;
  suggestion: Suggestion | null;
  hints: string[];
}

/** What a fetch returned; `body` is the raw bytes. */
export interface FetchedText {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
}

/** GET `url` (Accept: application/xml), redirects not followed. Rejects when no answer came. */
export type FetchText = (url: string) => Promise<FetchedText>;

export interface CheckOptions {
  registrationUrl: string;
  /** Item id to fetch through resourceInfoURL. */
  id?: string;
  /** Ids to fetch through resourceTaxonomyInfoURL. */
  taxonomyIds?: string[];
  /** Tunnel name for the suggested config (default: the relay URL's tunnel, else "provider"). */
  tunnel?: string;
  /** Default: Node http(s) GET with a 15 s timeout. */
  fetchText?: FetchText;
}
