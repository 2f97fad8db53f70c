import { describe, expect, it } from 'vitest';
import { retryAfterDelayMs } from '../../../src/http/retry-after.js';

describe('retryAfterDelayMs (a relay turning agents away during a reconnect storm)', () => {
  it('spreads delta-seconds over half to one and a half times the value', () => {
    expect(retryAfterDelayMs('2', () => 0)).toBe(1000);
    expect(retryAfterDelayMs('2', () => 0.999)).toBe(2998);
    expect(retryAfterDelayMs([' 1 '], () => 0.5)).toBe(1000);
    expect(retryAfterDelayMs('0', () => 0.7)).toBe(0);
  });

  it("leaves anything else to the agent's own backoff", () => {
    for (const v of [undefined, '', 'soon', '-1', '1.5', '61', '9999', 'Wed, 21 Oct 2026 07:28:00 GMT']) expect(retryAfterDelayMs(v, () => 0.5), String(v)).toBeUndefined();
  });
});
