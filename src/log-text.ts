/**
 * Strings from the other side of a connection (an agent's hostname, software
 * version, goaway and close reasons, claims of a token that failed to verify)
 * go into log lines and error messages. `untrusted()` makes one safe to log:
 * bounded in length, one line, no terminal control sequences.
 */

/** Default cap, in characters, for an untrusted string in a log line. */
export const UNTRUSTED_MAX = 200;

// C0 and C1 controls, DEL, line/paragraph separators, bidi overrides,
// embeddings, isolates and marks (U+200E/F, U+061C), zero-width characters
// and the BOM (which can make a log line read differently from what it
// holds, or hide a character in a name).
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `[number 42]`, `[object]`, `[list of 3]`, ... : what a non-string was, without its content. */
function describeNonString(value: unknown): string {
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return `[${typeof value} ${String(value).slice(0, 32)}]`;
    case 'object':
      return Array.isArray(value) ? `[list of ${value.length}]` : '[object]';
    default:
      return `[${typeof value}]`;
  }
}

/**
 * A string safe to log: at most `max` characters (then `…[+N chars]` saying
 * how many were cut), control characters replaced by U+FFFD, lone surrogates
 * made well-formed. Non-strings are described by type (`[number 42]`,
 * `[object]`, `[list of 3]`); undefined and null give undefined, so an absent
 * field stays absent.
 */
export function untrusted(value: unknown, max = UNTRUSTED_MAX): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return describeNonString(value);
  const limit = Math.max(0, Math.floor(max));
  let text = value;
  let cut = 0;
  if (text.length > limit) {
    let end = limit;
    // Do not split a surrogate pair.
    if (end > 0 && /[\ud800-\udbff]/.test(text[end - 1]!)) end--;
    cut = text.length - end;
    text = text.slice(0, end);
  }
  text = text.replace(LONE_SURROGATE, '\ufffd').replace(CONTROL, '\ufffd');
  return cut > 0 ? `${text}…[+${cut} chars]` : text;
}
