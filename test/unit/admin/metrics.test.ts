/**
 * The Prometheus text both sides serve: the series worth alerting on, and
 * labels a caller cannot grow (an unknown tunnel or a path never becomes a
 * label value; an error code is one of ours).
 */
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../../agent/metrics.js';
import { AgentRegistry, type ConnectedAgent } from '../../../relay/agent-registry.js';
import { RelayMetrics } from '../../../relay/metrics.js';
import type { MuxSession } from '../../../src/mux/session.js';
import type { VerifiedAgentClaims } from '../../../src/token.js';

function agent(agentId: string, tunnels: string[], expiresInS: number, open = 0): ConnectedAgent {
  const session = { isOpen: true, outgoingCount: 0, exchangeCount: open, bytesIn: 0, bytesOut: 0 } as unknown as MuxSession;
  const claims = { agentId, tunnels, expiresAt: new Date(Date.now() + expiresInS * 1000) } as VerifiedAgentClaims;
  return { connectionId: `${agentId}-${expiresInS}`, agentId, remoteAddress: '127.0.0.1', tunnels, session, draining: false, claims };
}

/** Every label value in the text, as `name{...}` strings. */
const series = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('ctbridge_') && l.includes('{')).map((l) => l.slice(0, l.lastIndexOf(' ')));

describe('relay metrics', () => {
  it('agents per tunnel (0 for a configured tunnel without one), open exchanges, token expiry per agent (soonest connection)', async () => {
    const registry = new AgentRegistry(10);
    const m = new RelayMetrics(registry, () => ({ web: {}, api: {} }));
    registry.add(agent('site-a', ['web', 'files'], 3600, 2));
    registry.add(agent('site-a', ['web'], 600, 1));
    registry.add(agent('site-b', ['files'], 86_400));
    const text = await m.registry.metrics();
    expect(text).toMatch(/^ctbridge_tunnel_agents\{tunnel="api"\} 0$/m);
    expect(text).toMatch(/^ctbridge_tunnel_agents\{tunnel="web"\} 2$/m);
    expect(text).toMatch(/^ctbridge_tunnel_agents\{tunnel="files"\} 2$/m);
    expect(text).toMatch(/^ctbridge_agents_connected 3$/m);
    expect(text).toMatch(/^ctbridge_exchanges_open 3$/m);
    expect(text).toMatch(/^ctbridge_agent_token_expiry_seconds\{agent="site-a"\} (599|600)$/m);
    expect(text).toMatch(/^ctbridge_agent_token_expiry_seconds\{agent="site-b"\} (86399|86400)$/m);
  });

  it('keeps reporting a served tunnel at 0 after its agent left; forgets an agent that left', async () => {
    const registry = new AgentRegistry(10);
    const m = new RelayMetrics(registry);
    const a = agent('site-a', ['files'], 3600);
    registry.add(a);
    await m.registry.metrics();
    registry.remove(a);
    const text = await m.registry.metrics();
    expect(text).toMatch(/^ctbridge_tunnel_agents\{tunnel="files"\} 0$/m);
    expect(text).not.toContain('agent="site-a"');
  });

  it('counts bytes and errors by tunnel and code; an unknown tunnel is "", a foreign code is "other", a path is never a label', async () => {
    const registry = new AgentRegistry(10);
    const m = new RelayMetrics(registry, () => ({ web: {} }));
    m.request('web', 200, 0.01, { bytesIn: 100, bytesOut: 5000 });
    m.request('web', 200, 0.02, { bytesIn: 0, bytesOut: 1000 });
    m.request('web', 502, 0.02, { code: 'CTB_TARGET_UNREACHABLE' });
    m.request('', 404, 0, { code: 'CTB_TUNNEL_UNKNOWN' });
    // Names the relay does not know never become labels, whoever passes them.
    m.request('made-up-by-a-caller', 404, 0, { code: 'CTB_TUNNEL_UNKNOWN' });
    m.request('/t/web/secret/path?token=x', 400, 0, { code: 'CTB_BAD_REQUEST' });
    m.request('web', 502, 0, { code: 'X-INJECTED-<code>' });
    const text = await m.registry.metrics();
    expect(text).toMatch(/^ctbridge_tunnel_bytes_total\{tunnel="web",direction="in"\} 100$/m);
    expect(text).toMatch(/^ctbridge_tunnel_bytes_total\{tunnel="web",direction="out"\} 6000$/m);
    expect(text).toMatch(/^ctbridge_errors_total\{tunnel="web",code="CTB_TARGET_UNREACHABLE"\} 1$/m);
    expect(text).toMatch(/^ctbridge_errors_total\{tunnel="",code="CTB_TUNNEL_UNKNOWN"\} 2$/m);
    expect(text).toMatch(/^ctbridge_errors_total\{tunnel="",code="CTB_BAD_REQUEST"\} 1$/m);
    expect(text).toMatch(/^ctbridge_errors_total\{tunnel="web",code="other"\} 1$/m);
    expect(text).toMatch(/^ctbridge_requests_total\{tunnel="",status="404"\} 2$/m);
    const labels = series(text).join('\n');
    expect(labels).not.toContain('made-up');
    expect(labels).not.toContain('secret');
    expect(labels).not.toContain('INJECTED');
    expect(text).not.toContain('ctbridge_streams_open');
  });

  it('takes a tunnel an agent served as a label, also after it left', async () => {
    const registry = new AgentRegistry(10);
    const m = new RelayMetrics(registry);
    const a = agent('site-a', ['adhoc'], 3600);
    registry.add(a);
    registry.remove(a);
    m.request('adhoc', 502, 0, { code: 'CTB_AGENT_NOT_CONNECTED' });
    expect(await m.registry.metrics()).toMatch(/^ctbridge_errors_total\{tunnel="adhoc",code="CTB_AGENT_NOT_CONNECTED"\} 1$/m);
  });
});

describe('agent metrics', () => {
  it('relay connected, open exchanges, reconnects, token expiry, requests, errors, latency and bytes by tunnel', async () => {
    const m = new AgentMetrics({
      relays: () => [
        { relay: 'wss://relay-1.example/_ctbridge/agent', connected: true, openExchanges: 2, reconnects: 3 },
        { relay: 'wss://relay-2.example/_ctbridge/agent', connected: false, openExchanges: 0, reconnects: 0 },
      ],
      tokenSecondsLeft: () => 1_209_600,
    });
    m.request('web', 200, 0.05, undefined, { in: 10, out: 4096 });
    m.request('web', 502, 0.01, 'CTB_TARGET_UNREACHABLE', { in: 0, out: 0 });
    m.request('web', 502, 0.01, 'not-a-code');
    const text = await m.registry.metrics();
    expect(text).toMatch(/^ctbridge_agent_relay_connected\{relay="wss:\/\/relay-1\.example\/_ctbridge\/agent"\} 1$/m);
    expect(text).toMatch(/^ctbridge_agent_relay_connected\{relay="wss:\/\/relay-2\.example\/_ctbridge\/agent"\} 0$/m);
    expect(text).toMatch(/^ctbridge_agent_exchanges_open 2$/m);
    expect(text).toMatch(/^ctbridge_agent_reconnects_total\{relay="wss:\/\/relay-1\.example\/_ctbridge\/agent"\} 3$/m);
    expect(text).toMatch(/^ctbridge_agent_token_expiry_seconds 1209600$/m);
    expect(text).toMatch(/^ctbridge_agent_requests_total\{tunnel="web",status="502"\} 2$/m);
    expect(text).toMatch(/^ctbridge_agent_errors_total\{tunnel="web",code="CTB_TARGET_UNREACHABLE"\} 1$/m);
    expect(text).toMatch(/^ctbridge_agent_errors_total\{tunnel="web",code="other"\} 1$/m);
    expect(text).toMatch(/^ctbridge_agent_tunnel_bytes_total\{tunnel="web",direction="in"\} 10$/m);
    expect(text).toMatch(/^ctbridge_agent_tunnel_bytes_total\{tunnel="web",direction="out"\} 4096$/m);
    expect(text).toMatch(/^ctbridge_agent_target_duration_seconds_count\{tunnel="web"\} 3$/m);
  });
});
