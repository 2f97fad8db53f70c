/**
 * `ctbridge check` output: ✓/⚠/✗ text for people, or JSON for scripts.
 * The report is already redacted (run-check.ts); nothing here adds data.
 */
import { formatXmlIssues } from '../../src/xml/kinds.js';
import type { CheckItem, CheckReport, FetchStep, HttpExchange, Level } from './types.js';

export const SYMBOLS: Record<Level, string> = { ok: '✓', warn: '⚠', error: '✗', info: '•' };

function indent(text: string, prefix: string): string[] {
  return text.replace(/\n$/, '').split('\n').map((line) => prefix + line);
}

function item(i: CheckItem, prefix: string): string[] {
  const lines = [`${prefix}${SYMBOLS[i.level]} ${i.text}`];
  if (i.issues?.length) lines.push(...indent(formatXmlIssues(i.issues), `${prefix}    `));
  return lines;
}

function exchange(r: HttpExchange | undefined, prefix: string): string[] {
  // A failed request is one ✗ item that names the URL already.
  if (!r || r.error !== undefined) return [];
  const facts = [
    `HTTP ${r.status}`,
    r.contentType ?? 'no Content-Type',
    r.bytes === undefined ? undefined : `${r.bytes} bytes`,
    r.ms === undefined ? undefined : `${r.ms} ms`,
  ].filter((f): f is string => f !== undefined);
  return [`${prefix}GET ${r.url}`, `${prefix}  → ${facts.join(' · ')}`];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function fetchSection(title: string, step: FetchStep): string[] {
  return ['', title, ...exchange(step.request, '  '), ...step.items.flatMap((i) => item(i, '  '))];
}

export function formatText(report: CheckReport): string {
  const out: string[] = [`ctbridge check ${report.registrationUrl}`];
  if (report.relay) out.push(`  through the relay tunnel "${report.relay.tunnel}" at ${report.relay.origin}`);
  let n = 0;
  const heading = (t: string): string => `${++n}. ${t}`;

  out.push('', heading('Registration'));
  out.push(...exchange(report.registration.request, '  '));
  out.push(...report.registration.items.flatMap((i) => item(i, '  ')));

  if (report.urls.length) {
    out.push('', heading('URLs in the registration'));
    for (const u of report.urls) {
      out.push(`  ${u.element}: ${u.url}`);
      out.push(...u.items.flatMap((i) => item(i, '    ')));
    }
  }
  if (report.fetch) {
    out.push(...fetchSection(heading(`Fetch resourceInfoURL with id "${report.fetch.id}"`), report.fetch));
  }
  if (report.taxonomy) {
    out.push(...fetchSection(heading(`Fetch resourceTaxonomyInfoURL with ids ${report.taxonomy.ids.join(',')}`), report.taxonomy));
  }
  const s = report.suggestion;
  if (s) {
    out.push('', heading(`Suggested tunnel "${s.tunnel}"`));
    out.push('  agent.yaml (on the intranet):', ...indent(s.agentYaml, '    '));
    out.push('  relay.yaml (public side):', ...indent(s.relayYaml, '    '));
    out.push(...s.items.flatMap((i) => item(i, '  ')));
  }
  if (report.hints.length) {
    out.push('', 'Hints');
    out.push(...report.hints.map((h) => `  ${SYMBOLS.info} ${h}`));
  }
  const warnings = report.warnings ? ` (${plural(report.warnings, 'warning')})` : '';
  out.push(
    '',
    report.ok
      ? `Result: ${SYMBOLS.ok} everything checked conforms${warnings}`
      : `Result: ${SYMBOLS.error} ${plural(report.errors, 'error')}${warnings}`,
  );
  return `${out.join('\n')}\n`;
}

export function formatJson(report: CheckReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
