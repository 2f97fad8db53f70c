import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CtbridgeError, ERROR_CODES } from '../../src/errors.js';

/** The error-code table lives in docs/errors.md, "Error codes". */
const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error codes', () => {
  it.each(Object.entries(ERROR_CODES))('%s is documented in the docs/errors.md table with its status', (code, info) => {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    if (code !== 'CTB_CONFIG_INVALID') expect(row).toContain(`| ${info.status} |`);
  });

  it('every docs/errors.md error row is a real code', () => {
    const rows = doc.split('\n').filter((l) => /^\| `CTB_[A-Z_]+` \|/.test(l));
    for (const row of rows) expect(Object.keys(ERROR_CODES)).toContain(/`(CTB_[A-Z_]+)`/.exec(row)![1]);
  });

  it('adds the hint to the user message', () => {
    const e = new CtbridgeError('CTB_AGENT_NOT_CONNECTED', "agent for 'cioc' is not connected", { hint: 'ask IT to check the agent' });
    expect(e.status).toBe(502);
    expect(e.userMessage).toBe("agent for 'cioc' is not connected. ask IT to check the agent");
  });
});
