/**
 * Small validation helpers: walk a parsed config object section by section,
 * collect every problem as a `ConfigError` (file, key path, what was expected),
 * and report unknown keys with a "did you mean" suggestion.
 *
 * Value parsers are plain functions `(value: unknown) => T` that throw
 * `ValueError`; a `Section` catches those and records them against the key.
 * After a pass, `Problems.throwIfAny()` throws them all as one `ConfigErrors`;
 * values returned while problems exist are placeholders and must not escape.
 */
import { ConfigError, ConfigErrors } from '../errors.js';
import { ValueError, formatValue } from './units.js';

export type Parse<T> = (value: unknown) => T;

/** Problems found in one config file. */
export class Problems {
  readonly errors: ConfigError[] = [];

  /** `file` names the config in messages; relative paths in it resolve against `baseDir`. */
  constructor(
    readonly file: string,
    readonly baseDir: string,
  ) {}

  add(key: string, message: string): void {
    this.errors.push(new ConfigError(this.file, key, message));
  }

  throwIfAny(): void {
    if (this.errors.length > 0) throw new ConfigErrors(this.errors);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** `a string`, `a number`, `a list`, ... — a value's kind without its content. */
export function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'a mapping';
  return ['string', 'number', 'boolean'].includes(typeof value) ? `a ${typeof value}` : 'something else';
}

/** Levenshtein distance, for key suggestions. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The known key closest to `key` (typo, case, snake_case), if any is close enough. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const exact = known.find((k) => squash(k) === squash(key));
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance && d <= Math.max(1, Math.floor(k.length / 3))) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * One mapping in the config (the root, `limits`, `tunnels.ucws`, ...). Absent
 * (or null) sections read as empty, so every key takes its default.
 */
export class Section {
  /** Whether the mapping was written in the file (even if empty). */
  readonly present: boolean;
  readonly #raw: Record<string, unknown>;

  /**
   * Told of every mapping a parser checks, present or not, with its allowed
   * keys: how test/unit/config-docs.test.ts keeps docs/configuration.md in
   * step with the parsers. Unset in the programs.
   */
  static observe: ((path: string, keys: readonly string[] | null) => void) | undefined;

  /** `keys`: the allowed keys, or null to accept any (maps keyed by name). */
  constructor(
    readonly problems: Problems,
    readonly path: string,
    value: unknown,
    keys: readonly string[] | null,
  ) {
    Section.observe?.(path, keys);
    this.present = value !== undefined && value !== null;
    this.#raw = {};
    if (!this.present) return;
    if (!isPlainObject(value)) {
      // Only the type: a scalar here is often a mistyped line holding a secret ("secret hunter2").
      problems.add(path, `expected a mapping, got ${typeName(value)}`);
      return;
    }
    for (const k of Object.keys(value)) {
      if (keys === null || keys.includes(k)) {
        this.#raw[k] = value[k];
        continue;
      }
      const hint = suggestKey(k, keys);
      problems.add(this.key(k), hint ? `unknown key (did you mean "${hint}"?)` : `unknown key (known keys: ${keys.join(', ')})`);
    }
  }

  /** Full key path of a child, for messages. */
  key(k: string): string {
    return this.path ? `${this.path}.${k}` : k;
  }

  /** Whether `k` has a value (null counts as absent). */
  has(k: string): boolean {
    return this.value(k) !== undefined;
  }

  /** The raw value of `k`; null reads as undefined. */
  value(k: string): unknown {
    const v = Object.hasOwn(this.#raw, k) ? this.#raw[k] : undefined;
    return v === null ? undefined : v;
  }

  /** Names of the keys written in this mapping, even with empty values (for maps keyed by name). */
  names(): string[] {
    return Object.keys(this.#raw);
  }

  /** Record a problem against child key `k` (or this section when `k` is empty). */
  fail(k: string, message: string): void {
    this.problems.add(k ? this.key(k) : this.path, message);
  }

  /** Run `parse` on `value`, recording a `ValueError` against `key`. */
  check<T>(key: string, value: unknown, parse: Parse<T>): T | undefined {
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      this.problems.add(key, err.message);
      return undefined;
    }
  }

  /** Optional key: undefined when absent or invalid. */
  opt<T>(k: string, parse: Parse<T>): T | undefined {
    const v = this.value(k);
    return v === undefined ? undefined : this.check(this.key(k), v, parse);
  }

  /** Key with a default: `def` when absent (or invalid, with a problem recorded). */
  get<T>(k: string, parse: Parse<T>, def: T): T {
    return this.opt(k, parse) ?? def;
  }

  /** Required key: records `missing; expected <what>` when absent. */
  req<T>(k: string, parse: Parse<T>, what: string): T | undefined {
    if (!this.has(k)) {
      this.fail(k, `missing; expected ${what}`);
      return undefined;
    }
    return this.opt(k, parse);
  }

  /** A list; each item parsed on its own, problems keyed `k[i]`. Undefined when absent. */
  list<T>(k: string, parseItem: Parse<T>, example: string): T[] | undefined {
    const v = this.value(k);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      this.fail(k, `expected a list such as ${example}, got ${formatValue(v)}`);
      return undefined;
    }
    const out: T[] = [];
    v.forEach((item: unknown, i) => {
      const parsed = this.check(`${this.key(k)}[${i}]`, item, parseItem);
      if (parsed !== undefined) out.push(parsed);
    });
    return out;
  }

  /** A nested mapping with its own allowed keys (null: any key). */
  section(k: string, keys: readonly string[] | null): Section {
    return new Section(this.problems, this.key(k), this.value(k), keys);
  }
}
