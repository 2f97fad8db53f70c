/**
 * Which Client Tracker message a document is, from its root element (name and
 * namespace) and, for a `response` root, its first child. Reads only the
 * start of the document.
 */
import { CT_NAMESPACE, CT_NAMESPACE_HTTPS_QUIRK, XmlInvalidError, type MessageKind } from './kinds.js';
import { prepareXml } from './prepare.js';
import { scanElements, type ScannedElement } from './scan.js';

export interface DetectedMessage {
  /** Local name of the root element. */
  root: string;
  /** Namespace of the root element, null for none. */
  namespace: string | null;
  /** For a `response` root: local name of its first child element (`resourceType`, `yes`, `error`, …). */
  payload: string | null;
  /**
   * The message kind; null for an error response (every response kind allows
   * one) and for anything unknown, including a foreign namespace.
   */
  kind: MessageKind | null;
  isErrorResponse: boolean;
  /** The namespace is the https form a provider in the field emits: pass through, but report it. */
  namespaceQuirk: boolean;
}

const ROOT_KINDS = new Map<string, MessageKind>([
  ['isInRequest', 'isInRequest'],
  ['pushResource', 'pushResource'],
  ['pushResourceRemove', 'pushResource'],
]);

const PAYLOAD_KINDS = new Map<string, MessageKind>([
  ['resourceType', 'registration'],
  ['resourceInfo', 'resourceInfo'],
  ['taxonomy', 'resourceInfo'],
  ['yes', 'isInResponse'],
  ['no', 'isInResponse'],
  ['success', 'pushResourceResponse'],
]);

/** Throws XmlInvalidError when there is no root element or a DOCTYPE. */
export function detectMessage(input: string | Uint8Array): DetectedMessage {
  const { text } = prepareXml(input);
  let root: ScannedElement | undefined;
  let first: ScannedElement | undefined;
  scanElements(
    text,
    () => undefined,
    (element) => {
      if (element.depth === 0) root = element;
      else if (element.depth === 1) first = element;
      return first === undefined;
    },
  );
  if (!root) throw new XmlInvalidError('The document has no root element');
  const known = root.namespace === CT_NAMESPACE || root.namespace === CT_NAMESPACE_HTTPS_QUIRK;
  const payload = root.local === 'response' ? (first?.local ?? null) : null;
  const kind = !known ? null : root.local === 'response' ? PAYLOAD_KINDS.get(payload ?? '') : ROOT_KINDS.get(root.local);
  return {
    root: root.local,
    namespace: root.namespace,
    payload,
    kind: kind ?? null,
    isErrorResponse: known && root.local === 'response' && payload === 'error',
    namespaceQuirk: root.namespace === CT_NAMESPACE_HTTPS_QUIRK,
  };
}
