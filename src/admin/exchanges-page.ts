/**
 * The inspector's pages on the admin listener: the recent exchanges with
 * filters (tunnel, status class, error code, request id), and one exchange
 * with its (redacted) headers and kept bodies; on an agent, a Replay button
 * that sends the kept request to the target again and shows the new answer
 * next to the old one. Every value is escaped; the one script is fixed text
 * that reads the request id from an attribute and writes with textContent.
 */
import type { EntryFilter, InspectEntry, KeptBody } from '../inspect/entry.js';
import type { ExchangeRing } from '../inspect/ring.js';
import { bytes, cspHash, escapeHtml, facts, page, styleHash } from './page.js';

const STYLE = `
form.filter{display:flex;gap:.6em;align-items:end;flex-wrap:wrap;margin:.5em 0 1em}form.filter label{display:flex;flex-direction:column;font-size:.85em;color:#555}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;max-height:30em;overflow:auto;white-space:pre-wrap;word-break:break-all}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1em}.side>div{min-width:0}
button{font:inherit;padding:.3em 1em}`;

const when = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

const tone = (status: number): string => (status >= 500 || status === 0 ? ' class="bad"' : status >= 400 ? ' class="warn"' : '');

function ctText(e: InspectEntry): string {
  if (!e.ct) return '';
  const parts = [e.ct.message + (e.ct.id ? ` ${e.ct.id}` : ''), e.ct.validation];
  if (e.ct.rewritten) parts.push('URLs rewritten');
  return parts.join(', ');
}

function filterForm(f: EntryFilter): string {
  const input = (name: keyof EntryFilter, label: string, placeholder: string): string =>
    `<label>${label}<input name="${name}" value="${escapeHtml(f[name] ?? '')}" placeholder="${escapeHtml(placeholder)}"></label>`;
  const classes = ['', '2xx', '3xx', '4xx', '5xx'];
  const status = `<label>status<select name="status">${classes.map((c) => `<option value="${c}"${(f.status ?? '') === c ? ' selected' : ''}>${c || 'any'}</option>`).join('')}</select></label>`;
  return `<form class="filter" method="get" action="/exchanges">${input('tunnel', 'tunnel', 'any')}${status}${input('code', 'error code', 'CTB_...')}${input('requestId', 'request id', 'any')}<button type="submit">Filter</button> <a href="/exchanges">clear</a></form>`;
}

/** The table of entries, each request id a link to its page. */
function exchangesTable(role: 'relay' | 'agent', entries: readonly InspectEntry[], empty: string): string {
  if (entries.length === 0) return empty;
  const head = ['when', 'tunnel', 'request id', 'method', 'path', 'status', 'ms', 'in', 'out', 'code', role === 'relay' ? 'served by' : 'target', 'Client Tracker'];
  const rows = entries.map((e) => {
    const link = `<a href="/exchanges/${encodeURIComponent(e.requestId)}">${escapeHtml(e.requestId)}</a>`;
    const cells = [
      escapeHtml(when(e.at)), escapeHtml(e.tunnel), link, escapeHtml(e.method), escapeHtml(e.path),
    ].map((c) => `<td>${c}</td>`).join('')
      + `<td${tone(e.status)}>${e.status || ''}</td><td class="num">${e.durationMs}</td><td class="num">${escapeHtml(bytes(e.bytesIn))}</td><td class="num">${escapeHtml(bytes(e.bytesOut))}</td>`
      + [e.code ?? '', e.servedBy ?? '', ctText(e)].map((c) => `<td>${escapeHtml(c)}</td>`).join('');
    return `<tr>${cells}</tr>`;
  });
  return `<table class="exchanges"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

/** The status page's section: the newest few exchanges, and the way to all of them. */
export function recentExchangesSection(role: 'relay' | 'agent', entries: readonly InspectEntry[] | undefined): string {
  if (!entries) return '<p class="empty">The inspector is off (inspect: off).</p>';
  return exchangesTable(role, entries, '<p class="empty">None yet.</p>')
    + '<p><a href="/exchanges">All recent exchanges, with filters</a> · <a href="/exchanges?status=5xx">only 5xx</a></p>';
}

export function exchangesPage(role: 'relay' | 'agent', ring: ExchangeRing | undefined, filter: EntryFilter, entries: readonly InspectEntry[]): string {
  const title = `ctbridge ${role}: recent exchanges`;
  if (!ring) {
    return page(title, { ready: true, reason: 'the inspector is off (inspect: off in the config)' }, [['Exchanges', '<p class="empty">Nothing is kept: remove inspect: off from the config and reload.</p>']], { refresh: false, style: STYLE });
  }
  const list = exchangesTable(role, entries, '<p class="empty">No exchange matches (or none has happened since the start).</p>');
  const reason = `${ring.size} kept, ${bytes(ring.bytes)} of ${bytes(ring.maxBytes)}; newest first; secrets are shown as [REDACTED]`;
  return page(title, { ready: true, reason }, [[`Exchanges (${entries.length})`, filterForm(filter) + list]], { refresh: false, style: STYLE });
}

function headersTable(h: readonly [string, string][]): string {
  if (h.length === 0) return '<p class="empty">none</p>';
  return `<table><tbody>${h.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</tbody></table>`;
}

function bodyHtml(b: KeptBody | undefined): string {
  if (!b) return '<p class="empty">not kept (set inspect.bodies to keep the start of text bodies)</p>';
  if (b.bytes === 0) return '<p class="empty">empty</p>';
  if (b.text === undefined) return `<p class="empty">${escapeHtml(bytes(b.bytes))}, ${escapeHtml(b.note ?? 'not kept')}</p>`;
  return `<pre>${escapeHtml(b.text)}</pre>${b.truncated ? `<p class="empty">the first part of ${escapeHtml(bytes(b.bytes))}</p>` : ''}`;
}

/** Fixed text: renders POST /api/exchanges/<id>/replay's answer with textContent only. */
const REPLAY_SCRIPT = `
(function(){
var b=document.getElementById('replay');if(!b)return;
var out=document.getElementById('replay-result');
function el(t,text,cls){var e=document.createElement(t);if(text!==undefined)e.textContent=text;if(cls)e.className=cls;return e;}
function side(title,x){var d=el('div');d.appendChild(el('h3',title));
var dl=el('dl');[['status',x.status+(x.code?' '+x.code:'')],['duration',x.durationMs+' ms'],['bytes',String(x.bytesOut)]].forEach(function(p){dl.appendChild(el('dt',p[0]));dl.appendChild(el('dd',p[1],'v-'+p[0]));});d.appendChild(dl);
var t=el('table');(x.responseHeaders||[]).forEach(function(h){var r=el('tr');r.appendChild(el('th',h[0]));r.appendChild(el('td',h[1]));t.appendChild(r);});d.appendChild(t);
var body=x.responseBody;d.appendChild(el('pre',body&&body.text!==undefined?body.text:(body?(body.note||'not kept'):'not kept')));return d;}
b.addEventListener('click',function(){b.disabled=true;out.textContent='sending the request to the target again...';
fetch('/api/exchanges/'+encodeURIComponent(b.getAttribute('data-id'))+'/replay',{method:'POST',headers:{'X-Ctbridge-Admin':'1'}})
.then(function(r){return r.json();}).then(function(j){out.textContent='';
if(!j.ok){out.appendChild(el('p',j.error||'the replay failed','bad'));return;}
var s=el('div',undefined,'side');s.appendChild(side('Before ('+j.original.requestId+')',j.original));s.appendChild(side('Replay ('+j.replay.requestId+')',j.replay));out.appendChild(s);})
.catch(function(e){out.textContent='the replay failed: '+e;}).finally(function(){b.disabled=false;});});
})();`;

export function exchangePage(role: 'relay' | 'agent', id: string, e: InspectEntry | undefined): string {
  const title = `ctbridge ${role}: exchange ${id}`;
  if (!e) {
    return page(title, { ready: false, reason: 'not kept here: only the last exchanges of each tunnel are' }, [['Exchange', '<p><a href="/exchanges">all recent exchanges</a></p>']], { refresh: false, style: STYLE });
  }
  const rows: [string, string | number | undefined, ('good' | 'warn' | 'bad' | undefined)?][] = [
    ['when', when(e.at)],
    ['tunnel', e.tunnel],
    ['request id', e.requestId],
    ['kind', e.kind],
    ['request', `${e.method} ${e.path}`],
    ['status', e.status || 'no answer', e.status >= 500 || e.status === 0 ? 'bad' : e.status >= 400 ? 'warn' : 'good'],
    ['error code', e.code],
    ['duration', `${e.durationMs} ms${e.firstByteMs !== undefined ? ` (target's first byte after ${e.firstByteMs} ms)` : ''}`],
    ['bytes', `${bytes(e.bytesIn)} in, ${bytes(e.bytesOut)} out`],
    [role === 'relay' ? 'served by' : 'target', e.servedBy],
  ];
  if (e.replayOf) rows.push(['replay of', e.replayOf]);
  if (e.ct) {
    rows.push(['Client Tracker message', e.ct.message + (e.ct.id ? ` (id ${e.ct.id})` : '')]);
    rows.push(['validation', e.ct.validation + (e.ct.firstError ? `: ${e.ct.firstError}` : ''), e.ct.validation === 'valid' ? 'good' : e.ct.validation === 'not checked' ? undefined : 'bad']);
    if (e.ct.rewritten !== undefined) rows.push(['URLs rewritten by the relay', e.ct.rewritten ? 'yes' : 'no']);
  }
  const replay = role === 'agent'
    ? e.replayable
      ? `<p><button id="replay" type="button" data-id="${escapeHtml(e.requestId)}">Replay</button> sends this request to the tunnel's target again and shows the new answer next to this one.</p><div id="replay-result"></div>`
      : '<p class="empty">Cannot be replayed: its request body was not kept whole (set inspect.bodies larger than the body).</p>'
    : '';
  const sections: [string, string][] = [
    ['Exchange', facts(rows) + '<p><a href="/exchanges">all recent exchanges</a></p>'],
    ['Request headers', headersTable(e.requestHeaders)],
    ['Request body', bodyHtml(e.requestBody)],
    ['Response headers', headersTable(e.responseHeaders)],
    ['Response body', bodyHtml(e.responseBody)],
  ];
  if (role === 'agent') sections.push(['Replay', replay]);
  return page(title, { ready: true, reason: `${e.side} side; secrets are shown as [REDACTED]` }, sections, { refresh: false, style: STYLE, script: replay.includes('id="replay"') ? REPLAY_SCRIPT : undefined });
}

/** CSP hash sources of this page's inline style and script (src/admin/guard.ts securityHeaders). */
export const EXCHANGES_CSP = { style: styleHash(STYLE), script: cspHash(REPLAY_SCRIPT) } as const;
