/**
 * The documentation holds together: README.md stays a front door (at most
 * 200 lines, with the two commands), and every relative link in README.md,
 * docs/*.md and deploy/README.md reaches a file of this repository and, for
 * `#anchor` links into Markdown, a heading that exists (GitHub's slugs).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README_MAX_LINES = 200;

const DOCS = [
  'README.md',
  'deploy/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** The lines of a Markdown text outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]!;
      else if (m[1]![0] === fence[0] && m[1]!.length >= fence.length) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line: i + 1, text: line });
  });
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped (hyphens, spaces and underscores kept), spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file offers: its headings' slugs (repeats get -1, -2, ...) and explicit `<a id>`/`<a name>`. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text: line } of proseLines(read(file))) {
    const h = /^#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (h) {
      const base = slug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const a of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(a[1]!);
  }
  return out;
}

interface Link {
  line: number;
  target: string;
}

/** Inline links and images outside code: `[text](target)`, `[text](target "title")`. */
function links(file: string): Link[] {
  const out: Link[] = [];
  for (const { line, text } of proseLines(read(file))) {
    const prose = text.replace(/`[^`]*`/g, 'code');
    for (const l of prose.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line, target: l[1]! });
  }
  return out;
}

/** What is wrong with a link, or undefined when it resolves. */
function problem(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // https:, mailto:, ...: not checked here
  const hash = target.indexOf('#');
  const pathPart = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const abs = pathPart === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), decodeURIComponent(pathPart));
  const rel = relative(ROOT, abs);
  if (rel.startsWith('..') || rel.split(sep)[0] === '..') return `leaves the repository (${rel})`;
  if (!existsSync(abs)) return `no such file: ${rel}`;
  if (anchor === undefined || anchor === '') return undefined;
  if (statSync(abs).isDirectory() || !abs.endsWith('.md')) return undefined;
  const offered = anchors(rel.split(sep).join('/'));
  return offered.has(anchor) ? undefined : `${rel} has no heading for #${anchor}`;
}

describe('README.md', () => {
  const readme = read('README.md');

  it(`is a front door of at most ${README_MAX_LINES} lines`, () => {
    const lines = readme.endsWith('\n') ? readme.slice(0, -1).split('\n').length : readme.split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('gives the two commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });
});

describe('documentation links', () => {
  it.each(DOCS)('every relative link in %s reaches a file and heading of this repository', (file) => {
    const found = links(file);
    const broken = found.flatMap(({ line, target }) => {
      const p = problem(file, target);
      return p ? [`${file}:${line}: (${target}) ${p}`] : [];
    });
    expect(broken).toEqual([]);
  });

  it.each(DOCS)('%s names nothing outside this repository (../shared and the protocol reference there)', (file) => {
    const text = read(file);
    expect(text).not.toContain('../shared');
    expect(text).not.toMatch(/PROTOCOL\.md/);
  });

  it('finds links and anchors the way GitHub does', () => {
    expect(slug('Relay configuration (`relay.yaml`)')).toBe('relay-configuration-relayyaml');
    expect(slug('Provider → CT messages (egress)')).toBe('provider--ct-messages-egress');
    expect(slug('The single executable (Linux x64 agent, no Node.js)')).toBe('the-single-executable-linux-x64-agent-no-nodejs');
    expect(slug('7. Close codes')).toBe('7-close-codes');
    expect(slug('`ctbridge check`')).toBe('ctbridge-check');
    expect(links('README.md').length).toBeGreaterThan(10);
    expect(problem('README.md', 'docs/nowhere.md')).toMatch(/no such file/);
    expect(problem('README.md', 'docs/errors.md#no-such-heading')).toMatch(/no heading/);
    expect(problem('docs/errors.md', '../../outside.md')).toMatch(/leaves the repository/);
    expect(problem('docs/errors.md', '#error-codes')).toBeUndefined();
  });
});
