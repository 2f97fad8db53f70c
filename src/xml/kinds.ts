/**
 * The Client Tracker messages ctbridge knows, their namespace and root
 * elements, and the error every part of src/xml throws for bad XML.
 */
import { CtbridgeError } from '../errors.js';

/** Namespace of every Client Tracker message (default namespace, no prefix). */
export const CT_NAMESPACE = 'http://clienttracker.cioc.ca/schema/';
/** A provider in the field emits this (https) form in one error branch; strict validation rejects it. */
export const CT_NAMESPACE_HTTPS_QUIRK = 'https://clienttracker.cioc.ca/schema/';

export const XML_CONTENT_TYPE = 'application/xml; charset=utf-8';

export type MessageKind =
  | 'registration'
  | 'resourceInfo'
  | 'isInRequest'
  | 'isInResponse'
  | 'pushResource'
  | 'pushResourceResponse';

export const MESSAGE_KINDS: readonly MessageKind[] = [
  'registration',
  'resourceInfo',
  'isInRequest',
  'isInResponse',
  'pushResource',
  'pushResourceResponse',
];

/** Schema file and accepted root element names of each kind. */
export const KIND_INFO: Record<MessageKind, { schema: string; roots: readonly string[] }> = {
  registration: { schema: 'registration.xsd', roots: ['response'] },
  resourceInfo: { schema: 'resourceinfo.xsd', roots: ['response'] },
  isInRequest: { schema: 'incallrequest.xsd', roots: ['isInRequest'] },
  isInResponse: { schema: 'incallresponse.xsd', roots: ['response'] },
  pushResource: { schema: 'pushresource.xsd', roots: ['pushResource', 'pushResourceRemove'] },
  pushResourceResponse: { schema: 'pushresourceresponse.xsd', roots: ['response'] },
};

/** One problem found in an XML document. `line` is 1-based in the document as received. */
export interface XmlIssue {
  line: number;
  element?: string;
  message: string;
}

/** Bad XML: not well-formed, refused (DOCTYPE), or not the expected message. Code CTB_XML_INVALID. */
export class XmlInvalidError extends CtbridgeError {
  readonly issues: readonly XmlIssue[];

  constructor(message: string, issues: readonly XmlIssue[] = []) {
    super('CTB_XML_INVALID', message);
    this.name = 'XmlInvalidError';
    this.issues = issues;
  }
}

/** "line 3, element <id>: message" lines, for people. */
export function formatXmlIssues(issues: readonly XmlIssue[]): string {
  return issues
    .map((i) => `line ${i.line}${i.element ? `, element <${i.element}>` : ''}: ${i.message}`)
    .join('\n');
}
