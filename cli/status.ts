/**
 * `ctbridge status`: what a running relay or agent says about itself on its
 * admin listener (GET /api/status), as a few tables (like `cloudflared
 * tunnel info`), or the JSON itself with --json.
 *
 * Exit codes: 0 ready, 1 not ready (or the admin listener cannot be
 * reached), 2 bad usage or config.
 *
 * The formatting functions are pure (status JSON and "now" in, text out).
 * Every value from the status goes through `cell()`: an agent's hostname
 * or software string is the agent's to choose, and must not reach the
 * terminal with control sequences in it.
 */
import { ago, bytes, expiryText } from '../src/admin/page.js';
import { untrusted } from '../src/log-text.js';
import type { AgentStatus } from '../agent/admin.js';
import type { RelayStatus } from '../relay/admin.js';
import { AdminUnreachable, adminRequest, findAdminTarget, othersNote, unexpectedAnswer, type AdminTargetOptions } from './admin-client.js';
import { processOutput, type Output } from './output.js';

/** How many recent target failures the agent's table shows (the JSON has them all). */
export const FAILURES_SHOWN = 10;

/** A value as one safe line for a terminal: no control characters, bounded. */
export function cell(value: unknown, max = 200): string {
  if (value === undefined || value === null) return '';
  return untrusted(typeof value === 'string' ? value : String(value), max) ?? '';
}

/**
 * Columns separated by two spaces, padded to the widest value; `numeric`
 * columns right-aligned. The last column is not padded (no trailing blanks).
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly unknown[])[], numeric: readonly boolean[] = []): string {
  const text = rows.map((r) => headers.map((_, i) => cell(r[i])));
  const width = headers.map((h, i) => Math.max([...h].length, ...text.map((r) => [...r[i]].length)));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => {
        const pad = ' '.repeat(width[i] - [...v].length);
        if (numeric[i]) return pad + v;
        return i === values.length - 1 ? v : v + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)].join('\n');
}

/** `key  value` lines, keys padded, indented two spaces. */
function factLines(pairs: readonly [string, unknown][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `  ${k.padEnd(width)}  ${cell(v, 500)}`).join('\n');
}

/** How long since `iso`: `3h 4m`. */
function since(iso: string | undefined, now: Date): string {
  if (!iso) return '';
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? '' : ago(at, now);
}

function uptime(seconds: number | undefined): string {
  return typeof seconds === 'number' ? ago(new Date(0), new Date(seconds * 1000)) : '';
}

const readyWord = (ready: boolean): string => (ready ? 'ready' : 'NOT READY');

/** The facts both roles report, after their own. */
function processFacts(s: RelayStatus | AgentStatus): [string, unknown][] {
  return [
    ['uptime', uptime(s.uptimeSeconds)],
    ['software', s.software],
    ['config', s.config],
  ];
}

/** A table of `rows`, or the sentence `empty` when there is none. */
function tableOr(empty: string, headers: readonly string[], rows: readonly (readonly unknown[])[], numeric: readonly boolean[]): string {
  return rows.length === 0 ? empty : renderTable(headers, rows, numeric);
}

/** The relay's status as text: a header, its tunnels, its connected agents. */
export function formatRelayStatus(s: RelayStatus, now = new Date()): string {
  const tunnels = s.tunnels ?? [];
  const agents = s.agents ?? [];
  const out = [
    `relay ${cell(s.listen)}: ${readyWord(s.ready)} (${cell(s.readiness)})`,
    factLines([
      ['public URL', s.publicUrl],
      ['listen', s.listen],
      ...processFacts(s),
    ]),
    '',
    tableOr(
      'No tunnel is configured and no agent is connected.',
      ['TUNNEL', 'KIND', 'STATE', 'AGENTS', 'IN RELAY.YAML'],
      tunnels.map((t) => [t.name, t.kind, t.state, t.agents, t.configured ? 'yes' : 'no']),
      [false, false, false, true, false],
    ),
    '',
    tableOr(
      'No agent is connected.',
      ['AGENT', 'HOST', 'TUNNELS', 'FROM', 'CONNECTED', 'OPEN', 'IN', 'OUT', 'KEY', 'TOKEN EXPIRES'],
      agents.map((a) => [
        a.draining ? `${cell(a.agentId, 100)} (leaving)` : a.agentId,
        a.hostname,
        a.tunnels.join(','),
        a.remoteAddress,
        since(a.since, now),
        a.openExchanges,
        bytes(a.bytesIn),
        bytes(a.bytesOut),
        a.keyId ?? '-',
        expiryText(a.tokenExpiresAt, now),
      ]),
      [false, false, false, false, false, true, true, true, false, false],
    ),
    ...clusterLines(s, now),
  ];
  return `${out.join('\n')}\n`;
}

/** In a cluster: this node, and each other node as this one sees it. */
function clusterLines(s: RelayStatus, _now: Date): string[] {
  const c = s.cluster;
  if (!c) return [];
  const peers = c.peers ?? [];
  return [
    '',
    `cluster: node ${cell(c.nodeId)}, listening on ${cell(c.listen)}${c.synced ? '' : ' (still asking the other nodes which tunnels they serve)'}`,
    tableOr(
      'No other node is known (check cluster.peers).',
      ['NODE', 'ADDRESS', 'STATE', 'TUNNELS', 'LAST PROBLEM'],
      peers.map((p) => [p.nodeId ?? '?', p.address, p.state, p.tunnels.join(','), cell(p.lastProblem ?? '', 200)]),
      [false, false, false, false, false],
    ),
  ];
}

/** The agent's status as text: a header, its relay connections, its tunnels, recent target failures. */
export function formatAgentStatus(s: AgentStatus, now = new Date()): string {
  const relays = s.relays ?? [];
  const tunnels = s.tunnels ?? [];
  const failures = s.recentFailures ?? [];
  const token = s.tokenId ? `${cell(s.tokenId)}, expires ${expiryText(s.tokenExpiresAt, now)}` : expiryText(s.tokenExpiresAt, now);
  const out = [
    `agent ${cell(s.agentId) || '(token unreadable)'}: ${readyWord(s.ready)} (${cell(s.readiness, 500)})`,
    factLines([
      ['token', token],
      ...processFacts(s),
    ]),
    '',
    tableOr(
      'No relay is configured.',
      ['RELAY', 'STATE', 'CONNECTED', 'OPEN', 'IN', 'OUT', 'RECONNECTS', 'LAST PROBLEM'],
      relays.map((r) => [
        r.relay,
        r.state,
        since(r.connectedSince, now),
        r.openExchanges,
        bytes(r.bytesIn),
        bytes(r.bytesOut),
        r.reconnects,
        r.lastProblem ? `${cell(r.lastProblem.message, 300)} (${since(r.lastProblem.at, now)} ago)` : '',
      ]),
      [false, false, false, true, true, true, true, false],
    ),
    '',
    tableOr(
      'No tunnel is configured.',
      ['TUNNEL', 'TARGET', 'PUBLIC URL', 'REQUESTS', 'FAILED', 'OPEN'],
      tunnels.map((t) => [t.name, t.target, t.publicUrl ?? '(not connected yet)', t.requests, t.failures, t.open]),
      [false, false, false, true, true, true],
    ),
    '',
  ];
  if (failures.length === 0) {
    out.push('No target failures since the agent started.');
  } else {
    out.push(
      'Recent target failures (newest first):',
      renderTable(
        ['WHEN', 'TUNNEL', 'CODE', 'WHAT HAPPENED'],
        failures.slice(0, FAILURES_SHOWN).map((f) => [`${since(f.at, now)} ago`, f.tunnel, f.code, cell(f.message, 300)]),
      ),
    );
    if (failures.length > FAILURES_SHOWN) out.push(`... and ${failures.length - FAILURES_SHOWN} more (ctbridge status --json lists them all)`);
  }
  return `${out.join('\n')}\n`;
}

/** Either side's status as text, by its `role`. */
export function formatStatus(s: RelayStatus | AgentStatus, now = new Date()): string {
  return s.role === 'agent' ? formatAgentStatus(s, now) : formatRelayStatus(s, now);
}

export interface StatusOptions extends AdminTargetOptions {
  json?: boolean | undefined;
}

function isStatus(v: unknown): v is RelayStatus | AgentStatus {
  const o = v as { role?: unknown; ready?: unknown } | null;
  return typeof o === 'object' && o !== null && (o.role === 'relay' || o.role === 'agent') && typeof o.ready === 'boolean';
}

/** `ctbridge status`: prints the status; resolves to the exit code. Config errors throw (exit 2 in main). */
export async function statusCommand(opts: StatusOptions, out: Output = processOutput): Promise<number> {
  const found = await findAdminTarget(opts);
  const target = found.target;
  if (found.others.length > 0) out.stderr(othersNote(found));
  let answer;
  try {
    answer = await adminRequest(target, 'GET', '/api/status');
  } catch (err) {
    if (!(err instanceof AdminUnreachable)) throw err;
    out.stderr(`ctbridge: ${err.message}.\n${err.advice}\n`);
    return 1;
  }
  let status: unknown;
  try {
    status = answer.status === 200 ? JSON.parse(answer.body) : undefined;
  } catch {
    status = undefined;
  }
  if (!isStatus(status)) {
    out.stderr(`ctbridge: ${unexpectedAnswer(target, '/api/status', answer)}\n`);
    return 1;
  }
  out.stdout(opts.json ? (answer.body.endsWith('\n') ? answer.body : `${answer.body}\n`) : formatStatus(status));
  return status.ready ? 0 : 1;
}
