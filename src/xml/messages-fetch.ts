/**
 * The provider's answers to the Client Tracker server's GETs: registration
 * (registration.xsd) and fetch of one item or of taxonomy terms
 * (resourceinfo.xsd).
 */
import { attrs, buildDocument, text } from './build.js';
import { XmlInvalidError } from './kinds.js';
import { buildErrorResponse, describeChildren, parseResponse, type ErrorResponse } from './response.js';
import { child, children, requireChild } from './tree.js';

import { REGISTRATION_URL_ELEMENTS } from './registration-elements.js';

export { REGISTRATION_URL_ELEMENTS };

export interface ResourceType {
  name: string;
  launchURL: string;
  resourceInfoURL: string;
  resourceSummaryURL?: string;
  resourceEmailURL?: string;
  resourceTaxonomyInfoURL?: string;
}

export type RegistrationResponse = { kind: 'registration'; resourceType: ResourceType } | ErrorResponse;

export interface ResourceInfo {
  id: string;
  name: string;
  url: string;
}

export interface TaxonomyEntry {
  code: string;
  term: string;
}

export type ResourceInfoResponse =
  | { kind: 'resourceInfo'; resourceInfo: ResourceInfo }
  | { kind: 'taxonomy'; entries: TaxonomyEntry[] }
  | ErrorResponse;

export function parseRegistration(input: string | Uint8Array): RegistrationResponse {
  const parsed = parseResponse(input);
  if (!('root' in parsed)) return parsed;
  const node = requireChild(parsed.root, 'resourceType');
  const resourceType: ResourceType = {
    name: requireChild(node, 'name').text,
    launchURL: requireChild(node, 'launchURL').text,
    resourceInfoURL: requireChild(node, 'resourceInfoURL').text,
  };
  for (const optional of ['resourceSummaryURL', 'resourceEmailURL', 'resourceTaxonomyInfoURL'] as const) {
    const value = child(node, optional)?.text;
    if (value !== undefined) resourceType[optional] = value;
  }
  return { kind: 'registration', resourceType };
}

export function buildRegistration(message: RegistrationResponse): string {
  if (message.kind === 'error') return buildErrorResponse(message.error);
  const rt = message.resourceType;
  const content: Record<string, string> = { name: text(rt.name) };
  for (const element of REGISTRATION_URL_ELEMENTS) {
    const value = rt[element];
    if (value !== undefined) content[element] = text(value);
  }
  return buildDocument('response', { resourceType: content });
}

export function parseResourceInfo(input: string | Uint8Array): ResourceInfoResponse {
  const parsed = parseResponse(input);
  if (!('root' in parsed)) return parsed;
  const info = child(parsed.root, 'resourceInfo');
  if (info) {
    return {
      kind: 'resourceInfo',
      resourceInfo: {
        id: requireChild(info, 'id').text,
        name: requireChild(info, 'name').text,
        url: requireChild(info, 'url').text,
      },
    };
  }
  const taxonomy = child(parsed.root, 'taxonomy');
  if (taxonomy) {
    const entries = children(taxonomy, 'entry').map((e) => {
      const { code, term } = e.attrs;
      if (code === undefined || term === undefined) {
        throw new XmlInvalidError('<taxonomy><entry> needs both a code and a term attribute');
      }
      return { code, term };
    });
    return { kind: 'taxonomy', entries };
  }
  throw new XmlInvalidError(
    `<response> holds ${describeChildren(parsed.root)}; expected <resourceInfo>, <taxonomy> or <error>`,
  );
}

export function buildResourceInfo(message: ResourceInfoResponse): string {
  switch (message.kind) {
    case 'error':
      return buildErrorResponse(message.error);
    case 'resourceInfo': {
      const { id, name, url } = message.resourceInfo;
      return buildDocument('response', { resourceInfo: { id: text(id), name: text(name), url: text(url) } });
    }
    case 'taxonomy':
      return buildDocument('response', {
        taxonomy: message.entries.length === 0 ? '' : { entry: message.entries.map((e) => attrs({ code: e.code, term: e.term })) },
      });
  }
}
