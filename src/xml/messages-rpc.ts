/**
 * The provider's POSTs to the Client Tracker RPC URL and their answers:
 * isInRequest (incallrequest.xsd / incallresponse.xsd) and pushResource /
 * pushResourceRemove (pushresource.xsd / pushresourceresponse.xsd).
 */
import { buildDocument, ids, text, type Elements } from './build.js';
import { XmlInvalidError } from './kinds.js';
import { buildErrorResponse, describeChildren, parseResponse, type ErrorResponse } from './response.js';
import { child, children, expectRoot, parseTree, requireChild, type XNode } from './tree.js';

/** The values CT passed to the launch URL. `key` is a credential: never log it. */
export interface CtCredentials {
  login: string;
  key: string;
  ctid: string;
}

export type IsInRequest = CtCredentials;

export type IsInResponse =
  /** `previousRequest` is absent when CT sent no `<previous-request>`, and [] when it sent an empty one. */
  | { kind: 'yes'; ids: string[]; previousRequest?: string[] }
  | { kind: 'no' }
  | ErrorResponse;

export interface PushResourceItem {
  id: string;
  name: string;
  url: string;
}

export type PushResource =
  | ({ kind: 'pushResource'; resourceItem: PushResourceItem } & CtCredentials)
  | ({ kind: 'pushResourceRemove'; resourceItem: { id: string } } & CtCredentials);

export type PushResourceResponse = { kind: 'success'; ids: string[] } | ErrorResponse;

function readCredentials(node: XNode): CtCredentials {
  return {
    login: requireChild(node, 'login').text,
    key: requireChild(node, 'key').text,
    ctid: requireChild(node, 'ctid').text,
  };
}

function credentialElements(c: CtCredentials): Elements {
  return { login: text(c.login), key: text(c.key), ctid: text(c.ctid) };
}

function idsOf(node: XNode): string[] {
  return children(node, 'id').map((c) => c.text);
}

export function parseIsInRequest(input: string | Uint8Array): IsInRequest {
  const root = parseTree(input);
  expectRoot(root, 'isInRequest');
  return readCredentials(root);
}

export function buildIsInRequest(message: IsInRequest): string {
  return buildDocument('isInRequest', credentialElements(message));
}

export function parseIsInResponse(input: string | Uint8Array): IsInResponse {
  const parsed = parseResponse(input);
  if (!('root' in parsed)) return parsed;
  const { root } = parsed;
  const yes = child(root, 'yes');
  const no = child(root, 'no');
  if (root.children.length !== 1 || (!yes && !no)) {
    throw new XmlInvalidError(`<response> holds ${describeChildren(root)}; expected exactly one of <yes>, <no> or <error>`);
  }
  if (no) return { kind: 'no' };
  const answer: IsInResponse = { kind: 'yes', ids: idsOf(yes as XNode) };
  const previous = child(yes as XNode, 'previous-request');
  if (previous) answer.previousRequest = idsOf(previous);
  return answer;
}

export function buildIsInResponse(message: IsInResponse): string {
  switch (message.kind) {
    case 'error':
      return buildErrorResponse(message.error);
    case 'no':
      return buildDocument('response', { no: '' });
    case 'yes': {
      const yes: Elements = { id: ids(message.ids) };
      if (message.previousRequest) yes['previous-request'] = { id: ids(message.previousRequest) };
      return buildDocument('response', { yes });
    }
  }
}

export function parsePushResource(input: string | Uint8Array): PushResource {
  const root = parseTree(input);
  expectRoot(root, 'pushResource', 'pushResourceRemove');
  const item = requireChild(root, 'resourceItem');
  const id = requireChild(item, 'id').text;
  if (root.name === 'pushResourceRemove') {
    return { kind: 'pushResourceRemove', ...readCredentials(root), resourceItem: { id } };
  }
  const resourceItem = { id, name: requireChild(item, 'name').text, url: requireChild(item, 'url').text };
  return { kind: 'pushResource', ...readCredentials(root), resourceItem };
}

export function buildPushResource(message: PushResource): string {
  const { resourceItem } = message;
  const item: Elements =
    message.kind === 'pushResource'
      ? { id: text(resourceItem.id), name: text(message.resourceItem.name), url: text(message.resourceItem.url) }
      : { id: text(resourceItem.id) };
  return buildDocument(message.kind, { ...credentialElements(message), resourceItem: item });
}

export function parsePushResourceResponse(input: string | Uint8Array): PushResourceResponse {
  const parsed = parseResponse(input);
  if (!('root' in parsed)) return parsed;
  const { root } = parsed;
  if (!child(root, 'success')) {
    throw new XmlInvalidError(`<response> holds ${describeChildren(root)}; expected <success/><ids>…</ids> or <error>`);
  }
  return { kind: 'success', ids: idsOf(requireChild(root, 'ids')) };
}

export function buildPushResourceResponse(message: PushResourceResponse): string {
  if (message.kind === 'error') return buildErrorResponse(message.error);
  return buildDocument('response', { success: '', ids: { id: ids(message.ids) } });
}
