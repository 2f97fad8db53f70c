/**
 * The status pages of the admin listener: plain server-rendered HTML (no
 * script), every value escaped, refreshed every few seconds. What a person
 * reads at a glance: is it ready, who is connected, what flows.
 */

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface Column<T> {
  title: string;
  cell(row: T): string | number | undefined;
  /** Numbers right-aligned. */
  numeric?: boolean;
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(empty)}</p>`;
  const head = columns.map((c) => `<th${c.numeric ? ' class="num"' : ''}>${escapeHtml(c.title)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${columns.map((c) => `<td${c.numeric ? ' class="num"' : ''}>${escapeHtml(c.cell(r) ?? '')}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function facts(pairs: readonly [string, string | number | undefined][]): string {
  return `<dl>${pairs.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v ?? '')}</dd>`).join('')}</dl>`;
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

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.state{display:inline-block;padding:.15em .6em;border-radius:.8em;font-weight:600}
.ready{background:#d8f5d8;color:#135d13}.notready{background:#fde2e1;color:#8c1d18}
table{border-collapse:collapse;min-width:40em}th,td{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#666}dd{margin:0}
.empty{color:#666;font-style:italic}footer{margin-top:2em;color:#888;font-size:.9em}`;

/** A whole page: `title`, readiness, and sections of already-escaped HTML. */
export function page(title: string, ready: { ready: boolean; reason: string }, sections: readonly [string, string][]): string {
  const state = ready.ready ? '<span class="state ready">ready</span>' : '<span class="state notready">not ready</span>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)} ${state}</h1><p>${escapeHtml(ready.reason)}</p>
${sections.map(([h, body]) => `<h2>${escapeHtml(h)}</h2>\n${body}`).join('\n')}
<footer>Refreshes every 5 s. The same as JSON: <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a></footer>
</body></html>
`;
}
