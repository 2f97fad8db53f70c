/**
 * A byte-position XML scanner: walks elements with their namespace and the
 * exact character ranges of their tags and content, without building or
 * re-serialising anything. Used where the document must be kept as it was
 * (registration rewrite) or only its first elements matter (detect.ts).
 *
 * It checks tag nesting, not full well-formedness; DOCTYPEs must have been
 * refused before (prepare.ts).
 */
import { XmlInvalidError } from './kinds.js';

export interface ScannedElement {
  /** Local name (prefix removed). */
  local: string;
  /** Namespace URI from the in-scope xmlns declarations; null for none. */
  namespace: string | null;
  /** Depth: 0 for the root. */
  depth: number;
  /** Offset just past the start tag's `>`. */
  contentStart: number;
  /** Offset of the end tag's `<` (equals contentStart for `<x/>`). */
  contentEnd: number;
  /** Content parts in order; offsets into the document. */
  parts: ContentPart[];
}

export type ContentPart =
  | { type: 'text'; start: number; end: number }
  | { type: 'cdata'; start: number; end: number }
  | { type: 'element' | 'comment' | 'pi'; start: number; end: number };

interface Open {
  element: ScannedElement;
  tagStart: number;
  qname: string;
  scope: Map<string, string>;
}

const ATTRIBUTE = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

function lineAt(text: string, offset: number): number {
  return (text.slice(0, offset).match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
}

function fail(text: string, offset: number, message: string): never {
  const line = lineAt(text, offset);
  throw new XmlInvalidError(`Line ${line}: ${message}`, [{ line, message }]);
}

function indexOrFail(text: string, needle: string, from: number, what: string): number {
  const i = text.indexOf(needle, from);
  if (i < 0) fail(text, from, `${what} is not closed`);
  return i;
}

/** End of a start tag: the `>` not inside a quoted attribute value. */
function tagEnd(text: string, from: number): number {
  let quote = '';
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i;
  }
  return fail(text, from, 'a start tag is not closed');
}

function resolve(qname: string, scope: Map<string, string>): { local: string; namespace: string | null } {
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  const namespace = scope.get(prefix);
  return { local: qname.slice(colon + 1), namespace: namespace ? namespace : null };
}

/**
 * Calls `onElement` for every element when its end tag is reached (so its
 * content parts are complete), children before parents. Return `false` from
 * `onStart` to stop scanning early.
 */
export function scanElements(
  text: string,
  onElement: (element: ScannedElement) => void,
  onStart?: (element: ScannedElement) => boolean | void,
): void {
  const stack: Open[] = [];
  let i = 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const textEnd = lt < 0 ? text.length : lt;
    if (textEnd > i) stack.at(-1)?.element.parts.push({ type: 'text', start: i, end: textEnd });
    if (lt < 0) break;
    const parent = stack.at(-1)?.element.parts;
    if (text.startsWith('<!--', lt)) {
      i = indexOrFail(text, '-->', lt + 4, 'a comment') + 3;
      parent?.push({ type: 'comment', start: lt, end: i });
    } else if (text.startsWith('<![CDATA[', lt)) {
      const close = indexOrFail(text, ']]>', lt + 9, 'a CDATA section');
      parent?.push({ type: 'cdata', start: lt + 9, end: close });
      i = close + 3;
    } else if (text.startsWith('<?', lt)) {
      i = indexOrFail(text, '?>', lt + 2, 'a processing instruction') + 2;
      parent?.push({ type: 'pi', start: lt, end: i });
    } else if (text.startsWith('<!', lt)) {
      fail(text, lt, 'markup declarations (<!…>) are not allowed');
    } else if (text.startsWith('</', lt)) {
      const gt = indexOrFail(text, '>', lt, 'an end tag');
      const qname = text.slice(lt + 2, gt).trim();
      const open = stack.pop();
      if (!open || open.qname !== qname) fail(text, lt, `end tag </${qname}> does not match <${open?.qname ?? '(none)'}>`);
      open.element.contentEnd = lt;
      i = gt + 1;
      stack.at(-1)?.element.parts.push({ type: 'element', start: open.tagStart, end: i });
      onElement(open.element);
    } else {
      const gt = tagEnd(text, lt + 1);
      const selfClosing = text[gt - 1] === '/';
      const inner = text.slice(lt + 1, selfClosing ? gt - 1 : gt);
      const qname = /^[^\s/>]+/.exec(inner)?.[0] ?? fail(text, lt, 'an element has no name');
      const scope = new Map(stack.at(-1)?.scope);
      for (const m of inner.slice(qname.length).matchAll(ATTRIBUTE)) {
        const [, attr, dq, sq] = m;
        if (attr === 'xmlns') scope.set('', dq ?? sq ?? '');
        else if (attr?.startsWith('xmlns:')) scope.set(attr.slice(6), dq ?? sq ?? '');
      }
      const element: ScannedElement = {
        ...resolve(qname, scope),
        depth: stack.length,
        contentStart: gt + 1,
        contentEnd: gt + 1,
        parts: [],
      };
      i = gt + 1;
      if (onStart?.(element) === false) return;
      if (selfClosing) {
        stack.at(-1)?.element.parts.push({ type: 'element', start: lt, end: i });
        onElement(element);
      } else stack.push({ element, tagStart: lt, qname, scope });
    }
  }
  if (stack.length > 0) fail(text, text.length, `<${stack.at(-1)?.qname}> is not closed`);
}
