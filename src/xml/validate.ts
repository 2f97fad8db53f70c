/**
 * Schema validation of Client Tracker messages with libxml2 (wasm).
 *
 * The schemas in schemas/ are compiled once per process, on first use or by
 * an explicit loadSchemas() at startup. Input goes through prepare.ts first
 * (BOM, leading blank lines, DOCTYPE refusal), so libxml2 never sees a DTD;
 * it also parses with network and external-entity loading off.
 */
import {
  ParseOption,
  XmlBufferInputProvider,
  XmlDocument,
  XmlLibError,
  XsdValidator,
  xmlRegisterInputProvider,
  type ErrorDetail,
} from 'libxml2-wasm';
import {
  CT_NAMESPACE,
  CT_NAMESPACE_HTTPS_QUIRK,
  KIND_INFO,
  MESSAGE_KINDS,
  XmlInvalidError,
  type MessageKind,
  type XmlIssue,
} from './kinds.js';
import { prepareXml } from './prepare.js';
import { listAssets, readAsset } from '../assets.js';

export type ValidationResult = { ok: true } | { ok: false; errors: XmlIssue[] };

/** Schemas are handed to libxml2 under this pseudo-URL, so xs:include resolves from memory, not the file system. */
const SCHEMA_BASE = 'ctbridge-schemas:///';
const PARSE_OPTIONS = ParseOption.XML_PARSE_NONET | ParseOption.XML_PARSE_NO_XXE;

let validators: Map<MessageKind, XsdValidator> | undefined;

/** Compile every schema (once; later calls do nothing). Throws if a schema file is missing or broken. */
export function loadSchemas(): Map<MessageKind, XsdValidator> {
  if (validators) return validators;
  const provider = new XmlBufferInputProvider({});
  for (const file of listAssets('schemas').filter((f) => f.endsWith('.xsd'))) {
    provider.addBuffer(SCHEMA_BASE + file, readAsset(`schemas/${file}`));
  }
  xmlRegisterInputProvider(provider);
  const compiled = new Map<MessageKind, XsdValidator>();
  for (const kind of MESSAGE_KINDS) {
    const { schema } = KIND_INFO[kind];
    const doc = XmlDocument.fromBuffer(readAsset(`schemas/${schema}`), { url: SCHEMA_BASE + schema });
    try {
      compiled.set(kind, XsdValidator.fromDoc(doc));
    } finally {
      doc.dispose();
    }
  }
  validators = compiled;
  return compiled;
}

const ELEMENT_PREFIX = /^Element '([^']+)'(?::\s*|(?=,))/;
/** In messages about <key>, every quoted value is redacted except facet names and lengths. */
const KEEP_OR_QUOTED = /(\[facet '\w+'\]|length of '\d+')|'[^']*'/g;

/** libxml2's message, minimally translated: no `{namespace}` noise, element split out, the key never shown. */
function toIssue(detail: ErrorDetail, lineOffset: number): XmlIssue {
  let message = detail.message.trim().split(`{${CT_NAMESPACE}}`).join('');
  const m = ELEMENT_PREFIX.exec(message);
  const element = m?.[1];
  if (m) message = message.slice(m[0].length).replace(/^,\s*/, '');
  if (element === 'key') message = message.replace(KEEP_OR_QUOTED, (_quoted, keep?: string) => keep ?? "'[redacted]'");
  // libxml2 cites other lines ("tag mismatch: yes line 1 and no"): shift those too.
  if (lineOffset) message = message.replace(/\bline (\d+)\b/g, (_, n: string) => `line ${Number(n) + lineOffset}`);
  const line = detail.line + lineOffset;
  return element === undefined ? { line, message } : { line, element, message };
}

/** The root's namespace and name must be right before the schema is worth running. */
function checkRoot(kind: MessageKind, doc: XmlDocument, lineOffset: number): XmlIssue | undefined {
  const root = doc.root;
  const line = root.line + lineOffset;
  const ns = root.namespaceUri;
  if (ns !== CT_NAMESPACE) {
    const found =
      ns === CT_NAMESPACE_HTTPS_QUIRK
        ? `namespace '${ns}' (the https form, a known provider quirk)`
        : ns
          ? `namespace '${ns}'`
          : 'no namespace';
    return { line, element: root.name, message: `The root element is in ${found}; expected xmlns="${CT_NAMESPACE}"` };
  }
  const { roots } = KIND_INFO[kind];
  if (!roots.includes(root.name)) {
    return { line, element: root.name, message: `Expected root element <${roots.join('> or <')}> for a ${kind} message, found <${root.name}>` };
  }
  return undefined;
}

/**
 * Validate `input` as a `kind` message. 'resourceInfo' accepts the item and
 * the taxonomy answer; 'pushResource' accepts pushResource and
 * pushResourceRemove; every response kind accepts `<error>`.
 */
export function validateXml(kind: MessageKind, input: string | Uint8Array): ValidationResult {
  const validator = loadSchemas().get(kind) as XsdValidator;
  let text: string;
  let lineOffset: number;
  try {
    ({ text, lineOffset } = prepareXml(input));
  } catch (err) {
    if (err instanceof XmlInvalidError) return { ok: false, errors: [...err.issues] };
    throw err;
  }
  let doc: XmlDocument;
  try {
    doc = XmlDocument.fromString(text, { encoding: 'utf-8', option: PARSE_OPTIONS });
  } catch (err) {
    if (err instanceof XmlLibError) {
      const errors = err.details.filter((d) => d.level >= 2).map((d) => toIssue(d, lineOffset));
      return { ok: false, errors: errors.length ? errors : [{ line: lineOffset + 1, message: err.message.trim() }] };
    }
    throw err;
  }
  try {
    const rootIssue = checkRoot(kind, doc, lineOffset);
    if (rootIssue) return { ok: false, errors: [rootIssue] };
    validator.validate(doc);
    return { ok: true };
  } catch (err) {
    if (err instanceof XmlLibError) return { ok: false, errors: err.details.map((d) => toIssue(d, lineOffset)) };
    throw err;
  } finally {
    doc.dispose();
  }
}
