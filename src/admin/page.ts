/**
 * The status pages of the admin listener: plain server-rendered HTML (no
 * script), every value escaped, refreshed every few seconds. What a person
 * reads at a glance: is it ready, who is connected, what flows.
 */
import { createHash } from 'node:crypto';

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** How a cell is marked for the eye: green, amber, red. */
export type Tone = 'good' | 'warn' | 'bad';

export interface Column<T> {
  title: string;
  cell(row: T): string | number | undefined;
  /** Numbers right-aligned. */
  numeric?: boolean;
  /** Marks the cell (a state, an expiry) as good, a warning or bad. */
  tone?(row: T): Tone | undefined;
  /** What the column means, shown when the pointer rests on its title. */
  hint?: string;
}

function cellClass(numeric: boolean | undefined, tone: Tone | undefined): string {
  const classes = [numeric ? 'num' : '', tone ?? ''].filter(Boolean);
  return classes.length ? ` class="${classes.join(' ')}"` : '';
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(empty)}</p>`;
  const head = columns.map((c) => `<th${cellClass(c.numeric, undefined)}${c.hint ? ` title="${escapeHtml(c.hint)}"` : ''}>${escapeHtml(c.title)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${columns.map((c) => `<td${cellClass(c.numeric, c.tone?.(r))}>${escapeHtml(c.cell(r) ?? '')}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** `name: value` lines; a value may be marked with a tone. */
export function facts(pairs: readonly (readonly [string, string | number | undefined, (Tone | undefined)?])[]): string {
  return `<dl>${pairs.map(([k, v, tone]) => `<dt>${escapeHtml(k)}</dt><dd${tone ? ` class="${tone}"` : ''}>${escapeHtml(v ?? '')}</dd>`).join('')}</dl>`;
}

/** A byte count for people: 1.2 MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A duration for people: 3d 4h, 12m 5s. */
export function ago(since: Date, now = new Date()): string {
  let s = Math.max(0, Math.round((now.getTime() - since.getTime()) / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Days before a token's expiry from which the pages and `ctbridge status` flag it (the agent warns from then too). */
export const TOKEN_WARN_DAYS = 14;

/** `2027-02-27T08:00:00Z (in 89d 23h)`, or `2027-02-27T08:00:00Z (EXPIRED 2h 3m ago)`. */
export function expiryText(iso: string | undefined, now = new Date()): string {
  if (!iso) return '';
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const shown = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return at.getTime() > now.getTime() ? `${shown} (in ${ago(now, at)})` : `${shown} (EXPIRED ${ago(at, now)} ago)`;
}

/** Expired: bad; within TOKEN_WARN_DAYS: a warning. */
export function expiryTone(iso: string | undefined, now = new Date()): Tone | undefined {
  if (!iso) return undefined;
  const left = new Date(iso).getTime() - now.getTime();
  if (Number.isNaN(left)) return undefined;
  return left <= 0 ? 'bad' : left < TOKEN_WARN_DAYS * 86_400_000 ? 'warn' : undefined;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.state{display:inline-block;padding:.15em .6em;border-radius:.8em;font-weight:600}
.ready{background:#d8f5d8;color:#135d13}.notready{background:#fde2e1;color:#8c1d18}
table{border-collapse:collapse;min-width:40em}th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}
th{background:#f4f4f4;white-space:nowrap}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#666}dd{margin:0}
.empty{color:#666;font-style:italic}footer{margin-top:2em;color:#888;font-size:.9em}
.good{color:#135d13;font-weight:600}.warn{background:#fff4d6;color:#7a4f00;font-weight:600}.bad{background:#fde2e1;color:#8c1d18;font-weight:600}
dd.good,dd.warn,dd.bad{justify-self:start;padding:0 .3em}
.reason{margin:.2em 0 0;color:#444}`;

/** The CSP source that allows the page's inline style sheet (with `extra` CSS appended, as page() writes it) and nothing else. */
export function styleHash(extra = ''): string {
  return cspHash(STYLE + extra);
}

/** A CSP hash source (`sha256-…`) for one inline script or style text. */
export function cspHash(text: string): string {
  return `sha256-${createHash('sha256').update(text).digest('base64')}`;
}

export const PAGE_STYLE_HASH = styleHash();
export interface PageOptions {
  /** Reload every 5 s (default true). */
  refresh?: boolean;
  /** A fixed script (never built from data: data goes in escaped attributes). */
  script?: string;
  /** More CSS. */
  style?: string;
}

/** A whole page: `title`, readiness, and sections of already-escaped HTML. */
export function page(title: string, ready: { ready: boolean; reason: string }, sections: readonly [string, string][], opts: PageOptions = {}): string {
  const refresh = opts.refresh ?? true;
  const state = ready.ready ? '<span class="state ready">ready</span>' : '<span class="state notready">not ready</span>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${refresh ? '<meta http-equiv="refresh" content="5">' : ''}
<title>${escapeHtml(title)}</title><style>${STYLE}${opts.style ?? ''}</style></head>
<body><h1>${escapeHtml(title)} ${state}</h1><p class="reason">${escapeHtml(ready.reason)}</p>
${sections.map(([h, body]) => `<h2>${escapeHtml(h)}</h2>\n${body}`).join('\n')}
${opts.script ? `<script>${opts.script}</script>` : ''}
<footer>${refresh ? 'Refreshes every 5 s. ' : ''}Recent exchanges: <a href="/exchanges">/exchanges</a> · The same as JSON: <a href="/api/status">/api/status</a> (what <code>ctbridge status</code> prints) · Prometheus: <a href="/metrics">/metrics</a> · health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a></footer>
</body></html>
`;
}
