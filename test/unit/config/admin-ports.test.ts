/**
 * admin.listen not set: the default port and the fallback ports taken when
 * it is in use (docs/operating.md#two-agents-on-one-host); set: none.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_FALLBACK_PORTS, defaultAdminPorts } from '../../../src/config/common.js';

describe('defaultAdminPorts', () => {
  it('relay 9090 then 9081-9089; agent 9091 then 9092-9099 (no overlap with the other default)', () => {
    expect(defaultAdminPorts('relay', {})).toEqual({ port: 9090, fallback: [9081, 9082, 9083, 9084, 9085, 9086, 9087, 9088, 9089] });
    expect(defaultAdminPorts('agent', {})).toEqual({ port: 9091, fallback: [9092, 9093, 9094, 9095, 9096, 9097, 9098, 9099] });
    expect(ADMIN_FALLBACK_PORTS.relay).not.toContain(9091);
    expect(ADMIN_FALLBACK_PORTS.agent).not.toContain(9090);
  });

  it('CTBRIDGE_TEST_ADMIN_PORTS (tests only) replaces the range: first port the default, the rest fallbacks', () => {
    expect(defaultAdminPorts('agent', { CTBRIDGE_TEST_ADMIN_PORTS: '40100-40103' })).toEqual({ port: 40100, fallback: [40101, 40102, 40103] });
  });

  it.each(['', 'x', '40100', '40103-40100', '40100-40100', '40000-40200', '65530-65540'])('ignores CTBRIDGE_TEST_ADMIN_PORTS=%j', (value) => {
    expect(defaultAdminPorts('agent', { CTBRIDGE_TEST_ADMIN_PORTS: value }).port).toBe(9091);
  });
});
