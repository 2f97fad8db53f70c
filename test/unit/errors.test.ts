import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CtbridgeError, ERROR_CODES } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('error codes', () => {
  it.each(Object.entries(ERROR_CODES))('%s is documented in the README error table with its status', (code, info) => {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    expect(row, `README has no row for ${code}`).toBeDefined();
    if (code !== 'CTB_CONFIG_INVALID') expect(row).toContain(`| ${info.status} |`);
  });

  it('every README error row is a real code', () => {
    const rows = readme.split('\n').filter((l) => /^\| `CTB_[A-Z_]+` \|/.test(l));
    for (const row of rows) expect(Object.keys(ERROR_CODES)).toContain(/`(CTB_[A-Z_]+)`/.exec(row)![1]);
  });

  it('adds the hint to the user message', () => {
    const e = new CtbridgeError('CTB_AGENT_NOT_CONNECTED', "agent for 'cioc' is not connected", { hint: 'ask IT to check the agent' });
    expect(e.status).toBe(502);
    expect(e.userMessage).toBe("agent for 'cioc' is not connected. ask IT to check the agent");
  });
});
