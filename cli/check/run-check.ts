/**
 * `ctbridge check` orchestration: play the Client Tracker server against a
 * provider (directly, or through a relay tunnel URL) and collect a report.
 * All network access goes through the injected `fetchText`.
 */
import { CtbridgeError } from '../../src/errors.js';
import { REGISTRATION_URL_ELEMENTS, parseResourceInfo } from '../../src/xml/messages.js';
import { child, parseTree } from '../../src/xml/tree.js';
import { judgeAnswer } from './answer.js';
import { displayUrl, redactDeep, redactText, relayOf, splitHttpUrl, throughTunnel, underBase } from './display.js';
import { fetchText as defaultFetchText, FetchTextError } from './fetch-text.js';
import { suggestConfig } from './suggest.js';
import type {
  CheckItem,
  CheckOptions,
  CheckReport,
  FetchStep,
  FetchText,
  RelayInfo,
  ResourceInfoStep,
  Step,
  TaxonomyStep,
  UrlElementName,
} from './types.js';
import { checkUrlElement } from './urls.js';

/** Bad command-line input (exit code 2). */
export class CheckUsageError extends CtbridgeError {
  constructor(message: string, hint?: string) {
    super('CTB_CONFIG_INVALID', message, hint === undefined ? undefined : { hint });
    this.name = 'CheckUsageError';
  }
}

const TUNNEL_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Client Tracker ids are at most 50 Unicode characters. */
const MAX_ID_LENGTH = 50;

function validateOptions(options: CheckOptions): void {
  if (!splitHttpUrl(options.registrationUrl)) {
    throw new CheckUsageError(
      `"${displayUrl(options.registrationUrl)}" is not an absolute http:// or https:// URL`,
      'pass the registration URL as Client Tracker would call it, e.g. https://intranet.example/ct/ctregister.asp',
    );
  }
  if (options.id !== undefined && options.id === '') throw new CheckUsageError('--id is empty', 'pass the id of an existing item');
  if (options.taxonomyIds !== undefined && options.taxonomyIds.length === 0) {
    throw new CheckUsageError('--taxonomy-ids is empty', 'pass comma-separated ids, e.g. --taxonomy-ids A1,B2');
  }
  if (options.tunnel !== undefined && !TUNNEL_NAME.test(options.tunnel)) {
    throw new CheckUsageError(`--tunnel "${options.tunnel}" is not a tunnel name`, 'use lower-case letters, digits and "-" (a DNS label)');
  }
}

type Got = { ok: true; answer: Awaited<ReturnType<FetchText>> } | { ok: false; reason: string; item: CheckItem };

async function get(fetchText: FetchText, url: string): Promise<Got> {
  try {
    return { ok: true, answer: await fetchText(url) };
  } catch (err) {
    const reason = err instanceof FetchTextError ? err.reason : String((err as Error)?.message ?? err);
    return { ok: false, reason, item: { level: 'error', text: `GET ${displayUrl(url)} failed: ${reason}` } };
  }
}

interface Registration {
  name?: string;
  error?: string;
  urls: Partial<Record<UrlElementName, string>>;
}

/** Read what can be read, even from a registration that fails validation (e.g. missing launchURL). */
function readRegistration(input: string | Buffer): Registration | null {
  let root;
  try {
    root = parseTree(input);
  } catch {
    return null;
  }
  if (root.name !== 'response') return null;
  const error = child(root, 'error');
  if (error) return { error: error.text, urls: {} };
  const rt = child(root, 'resourceType');
  if (!rt) return null;
  const reg: Registration = { urls: {} };
  const name = child(rt, 'name');
  if (name) reg.name = name.text;
  for (const element of REGISTRATION_URL_ELEMENTS) {
    const node = child(rt, element);
    if (node) reg.urls[element] = node.text.trim();
  }
  return reg;
}

/** Where to GET a server-called URL from here: through the relay tunnel when the registration came that way. */
function fetchBase(template: string, relay: RelayInfo | null): { url: string; relay: RelayInfo | null } {
  if (!relay || underBase(template, relay.publicBase)) return { url: template, relay: null };
  const swapped = throughTunnel(template, relay.publicBase);
  return swapped === null ? { url: template, relay: null } : { url: swapped, relay };
}

async function fetchResource(
  fetchText: FetchText,
  element: FetchStep['element'],
  template: string,
  url: string,
  base: ReturnType<typeof fetchBase>,
): Promise<FetchStep & { parsed?: ReturnType<typeof parseResourceInfo> }> {
  const step: FetchStep & { parsed?: ReturnType<typeof parseResourceInfo> } = {
    element,
    template: displayUrl(template),
    fetchedUrl: displayUrl(url),
    throughRelay: base.relay !== null,
    items: [],
  };
  if (base.relay) {
    step.items.push({
      level: 'info',
      text: `${element} points at the intranet, so the check fetched it through the relay tunnel "${base.relay.tunnel}" instead: ${displayUrl(url)}`,
    });
  }
  if (!splitHttpUrl(template)) {
    step.items.push({ level: 'error', text: `cannot fetch: ${element} is not an absolute http(s) URL` });
    return step;
  }
  const got = await get(fetchText, url);
  if (!got.ok) {
    step.request = { url: displayUrl(url), error: got.reason };
    step.items.push(got.item);
    return step;
  }
  const judged = judgeAnswer('resourceInfo', 'the answer', url, got.answer);
  step.request = judged.request;
  step.items.push(...judged.items);
  if (judged.parseable && judged.input !== undefined) {
    try {
      step.parsed = parseResourceInfo(judged.input);
    } catch (err) {
      // The schema messages above already say what is wrong; add the parser's view only if they did not.
      if (!step.items.some((i) => i.level === 'error')) step.items.push({ level: 'error', text: redactText((err as Error).message) });
    }
  }
  return step;
}

async function fetchItem(fetchText: FetchText, template: string, id: string, relay: RelayInfo | null): Promise<ResourceInfoStep> {
  const base = fetchBase(template, relay);
  const url = base.url.split('[ID]').join(encodeURIComponent(id));
  const { parsed, ...step } = await fetchResource(fetchText, 'resourceInfoURL', template, url, base);
  const out: ResourceInfoStep = { ...step, id };
  if ([...id].length > MAX_ID_LENGTH) {
    out.items.unshift({ level: 'warn', text: `the id has ${[...id].length} characters; Client Tracker ids are at most ${MAX_ID_LENGTH}` });
  }
  if (parsed?.kind === 'resourceInfo') {
    out.resourceInfo = parsed.resourceInfo;
    const { id: gotId, name, url: itemUrl } = parsed.resourceInfo;
    out.items.push({ level: 'info', text: `returned id "${gotId}", name "${name}", url ${itemUrl}` });
    if (gotId !== id) {
      out.items.push({ level: 'warn', text: `asked for id "${id}" but the answer holds id "${gotId}" (ids are compared as exact strings)` });
    }
  } else if (parsed?.kind === 'error') {
    out.items.push({ level: 'error', text: `the provider answered with an error for id "${id}": "${parsed.error}"` });
  } else if (parsed?.kind === 'taxonomy') {
    out.items.push({ level: 'error', text: 'the answer holds <taxonomy>; resourceInfoURL must answer <resourceInfo>' });
  }
  return out;
}

async function fetchTaxonomy(fetchText: FetchText, template: string, ids: string[], relay: RelayInfo | null): Promise<TaxonomyStep> {
  const base = fetchBase(template, relay);
  const url = base.url.split('[IDS]').join(ids.map(encodeURIComponent).join(','));
  const { parsed, ...step } = await fetchResource(fetchText, 'resourceTaxonomyInfoURL', template, url, base);
  const out: TaxonomyStep = { ...step, ids };
  if (parsed?.kind === 'taxonomy') {
    out.entries = parsed.entries;
    const shown = parsed.entries.slice(0, 5).map((e) => `${e.code} "${e.term}"`);
    const more = parsed.entries.length > 5 ? `, … (${parsed.entries.length - 5} more)` : '';
    out.items.push({ level: 'info', text: `returned ${parsed.entries.length} taxonomy entr${parsed.entries.length === 1 ? 'y' : 'ies'}${shown.length ? `: ${shown.join(', ')}${more}` : ''}` });
  } else if (parsed?.kind === 'error') {
    out.items.push({ level: 'error', text: `the provider answered with an error for ids ${ids.join(',')}: "${parsed.error}"` });
  } else if (parsed?.kind === 'resourceInfo') {
    out.items.push({ level: 'error', text: 'the answer holds <resourceInfo>; resourceTaxonomyInfoURL must answer <taxonomy>' });
  }
  return out;
}

function allItems(report: CheckReport): CheckItem[] {
  return [
    ...report.registration.items,
    ...report.urls.flatMap((u) => u.items),
    ...(report.fetch?.items ?? []),
    ...(report.taxonomy?.items ?? []),
    ...(report.suggestion?.items ?? []),
  ];
}

/** Run the whole check. Throws CheckUsageError for bad options; everything else ends up in the report. */
export async function buildReport(options: CheckOptions): Promise<CheckReport> {
  validateOptions(options);
  const fetchText = options.fetchText ?? defaultFetchText;
  const registrationUrl = options.registrationUrl.trim();
  const tunnelUrl = relayOf(registrationUrl);
  const relay: RelayInfo | null = tunnelUrl && { origin: tunnelUrl.origin, tunnel: tunnelUrl.tunnel, publicBase: tunnelUrl.publicBase };
  const registration: Step & { name?: string } = { items: [] };
  const report: CheckReport = {
    ok: false,
    errors: 0,
    warnings: 0,
    registrationUrl: displayUrl(registrationUrl),
    relay,
    registration,
    urls: [],
    fetch: null,
    taxonomy: null,
    suggestion: null,
    hints: [],
  };

  let reg: Registration | null = null;
  const got = await get(fetchText, registrationUrl);
  if (!got.ok) {
    registration.request = { url: displayUrl(registrationUrl), error: got.reason };
    registration.items.push(got.item);
  } else {
    const judged = judgeAnswer('registration', 'the registration', registrationUrl, got.answer);
    registration.request = judged.request;
    registration.items.push(...judged.items);
    if (judged.parseable && judged.input !== undefined) reg = readRegistration(judged.input);
  }
  if (reg?.error !== undefined) {
    registration.items.push({ level: 'error', text: `the provider answered with an error instead of a registration: "${reg.error}"` });
  } else if (reg?.name !== undefined) {
    registration.name = reg.name;
    registration.items.push({ level: 'info', text: `name: "${reg.name}"` });
  }

  const urls = reg?.urls ?? {};
  for (const element of REGISTRATION_URL_ELEMENTS) {
    const url = urls[element];
    if (url !== undefined) report.urls.push(checkUrlElement(element, url, relay));
  }

  const infoUrl = urls.resourceInfoURL;
  if (options.id !== undefined) {
    if (infoUrl) report.fetch = await fetchItem(fetchText, infoUrl, options.id, relay);
    else if (reg) report.hints.push('--id was given, but there is no resourceInfoURL to fetch it with');
  } else if (infoUrl) {
    report.hints.push('pass --id <an existing item id> to also fetch resourceInfoURL as Client Tracker does, and validate the answer');
  }
  const taxUrl = urls.resourceTaxonomyInfoURL;
  if (options.taxonomyIds !== undefined) {
    if (taxUrl) report.taxonomy = await fetchTaxonomy(fetchText, taxUrl, options.taxonomyIds, relay);
    else if (reg) registration.items.push({ level: 'warn', text: '--taxonomy-ids was given, but the registration has no resourceTaxonomyInfoURL to fetch them with' });
  } else if (taxUrl) {
    report.hints.push('pass --taxonomy-ids <id,id> to also fetch resourceTaxonomyInfoURL');
  }

  if (reg && reg.error === undefined) {
    const suggestInput: Parameters<typeof suggestConfig>[0] = { registrationUrl, relay, urls };
    if (options.tunnel !== undefined) suggestInput.tunnel = options.tunnel;
    report.suggestion = suggestConfig(suggestInput);
  }

  const items = allItems(report);
  report.errors = items.filter((i) => i.level === 'error').length;
  report.warnings = items.filter((i) => i.level === 'warn').length;
  report.ok = report.errors === 0;
  return redactDeep(report);
}
