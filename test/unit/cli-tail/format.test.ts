/**
 * What `ctbridge tail` and `ctbridge replay` print: one line per entry
 * with the Client Tracker summary, and values a caller chose (path,
 * tunnel, header values) made terminal-safe: no control sequence reaches
 * the terminal.
 */
import { describe, expect, it } from 'vitest';
import { replayText } from '../../../cli/replay.js';
import { tailLine } from '../../../cli/tail.js';
import type { InspectEntry } from '../../../src/inspect/entry.js';

const entry = (fields: Partial<InspectEntry> = {}): InspectEntry => ({
  seq: 1, side: 'relay', at: '2026-12-06T10:41:07.512Z', requestId: '3fa1c2d400000017', tunnel: 'web', kind: 'http', method: 'GET',
  path: '/orders?token=[REDACTED]', status: 502, durationMs: 31.2, bytesIn: 0, bytesOut: 120, code: 'CTB_TARGET_UNREACHABLE',
  servedBy: 'acme-1', requestHeaders: [], responseHeaders: [], ...fields,
});

describe('ctbridge tail lines', () => {
  it('shows time, side, tunnel, id, request, status, duration, code and who served it', () => {
    expect(tailLine(entry())).toBe('10:41:07.512  relay  web  3fa1c2d400000017  GET /orders?token=[REDACTED]  502  31.2ms  CTB_TARGET_UNREACHABLE  acme-1');
  });

  it('adds the Client Tracker message, validation, rewrite and first error', () => {
    const line = tailLine(entry({ status: 200, code: undefined, ct: { message: 'registration', validation: 'invalid', rewritten: true, firstError: 'line 4, element <name>: missing' } }));
    expect(line).toMatch(/ \[registration: invalid, URLs rewritten; line 4, element <name>: missing\]$/);
  });

  it('never passes a control sequence from a path or header to the terminal', () => {
    const hostile = entry({ path: '/a\u001b[2J\u001b]0;pwned\u0007b', tunnel: 'web\r\nfake line' });
    const line = tailLine(hostile);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    const text = replayText(entry({ responseBody: { bytes: 9, text: 'ok\u001b[31mred' } }), entry({ requestId: 'x-r1', status: 200, responseBody: { bytes: 2, text: 'fine' } }));
    expect(text.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(text).toMatch(/status\s+502 CTB_TARGET_UNREACHABLE\s+200/);
  });
});
