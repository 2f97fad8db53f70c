/**
 * The status pages as HTML: no script, every value escaped (an agent's
 * hostname and software are its own to choose), what an IT admin looks for.
 */
import { describe, expect, it } from 'vitest';
import { agentAdminRoutes, type AgentAdminDeps } from '../../../agent/admin.js';
import { AgentMetrics } from '../../../agent/metrics.js';
import { relayAdminRoutes } from '../../../relay/admin.js';
import { AgentRegistry, type ConnectedAgent } from '../../../relay/agent-registry.js';
import type { LiveConfig } from '../../../relay/live-config.js';
import { RelayMetrics } from '../../../relay/metrics.js';
import { escapeHtml, expiryTone, table } from '../../../src/admin/page.js';
import { parseAgentConfig, parseRelayConfig } from '../../../src/config/index.js';
import type { MuxSession } from '../../../src/mux/session.js';
import type { VerifiedAgentClaims } from '../../../src/token.js';
import { TEST_SECRET, tokenFor } from '../../helpers/tunnel.js';

const HOSTILE = `<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;`;

describe('page helpers', () => {
  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(escapeHtml(undefined)).toBe('');
  });

  it('marks cells with a tone and a column with a hint, escaped', () => {
    const html = table([{ s: 'up' }], [{ title: 'state', cell: (r) => r.s, tone: () => 'good', hint: 'a "hint"' }], 'none');
    expect(html).toContain('<th title="a &quot;hint&quot;">state</th>');
    expect(html).toContain('<td class="good">up</td>');
    expect(table([], [], '<none>')).toBe('<p class="empty">&lt;none&gt;</p>');
  });

  it('flags a token that expires within 14 days, and one that has expired', () => {
    const now = new Date('2027-01-01T00:00:00Z');
    expect(expiryTone('2027-03-01T00:00:00Z', now)).toBeUndefined();
    expect(expiryTone('2027-01-10T00:00:00Z', now)).toBe('warn');
    expect(expiryTone('2026-12-31T00:00:00Z', now)).toBe('bad');
  });
});

describe("the relay's page", () => {
  it('lists tunnels with state and agents, and agents with host, software and token expiry, all escaped, no script', () => {
    const config = parseRelayConfig({ auth: { secret: TEST_SECRET }, tunnels: { web: {}, idle: {} } }, 'relay.yaml', {});
    const registry = new AgentRegistry(10);
    const session = { isOpen: true, outgoingCount: 0, exchangeCount: 1, bytesIn: 2048, bytesOut: 10 } as unknown as MuxSession;
    const claims = { agentId: 'site-a', tunnels: ['web'], expiresAt: new Date(Date.now() + 5 * 86_400_000), tokenId: 'abcd' } as VerifiedAgentClaims;
    const agent: ConnectedAgent = {
      connectionId: 'c1', agentId: 'site-a', remoteAddress: '198.51.100.4', tunnels: ['web'], session, draining: false,
      claims, since: new Date(), software: HOSTILE, hostname: HOSTILE,
    };
    registry.add(agent);
    const html = relayAdminRoutes({
      started: new Date(), live: { config } as LiveConfig, registry, metrics: new RelayMetrics(registry),
      address: { host: '127.0.0.1', port: 8080 }, publicUrl: () => 'https://relay.example', ready: () => ({ ready: true, reason: 'listening on 127.0.0.1:8080' }),
      reload: async () => ({ ok: true, message: '' }),
    }).page();
    expect(html).not.toMatch(/<script|<img|onerror='/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt;&amp;amp;');
    expect(html).toContain('<td>web</td><td>http</td><td class="good">serving</td><td class="num">1</td><td>site-a</td><td>yes</td>');
    expect(html).toContain('<td>idle</td><td>http</td><td class="bad">no agent</td><td class="num">0</td><td></td><td>yes</td>');
    expect(html).toMatch(/<td class="warn">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in (4d 23h|5d 0h)\)<\/td>/);
    expect(html).toContain('<dt>tunnels</dt><dd>2; without an agent: idle</dd>');
    expect(html).toContain('<td class="num">2.0 KiB</td>');
  });
});

describe("the agent's page", () => {
  it('shows relay connections with their last problem, tunnels with target and public URL, recent failures', async () => {
    const config = parseAgentConfig({ relay: 'wss://relay.example', token: await tokenFor(['web'], 'site-a'), tunnels: { web: { target: 'http://user:pw@intranet:8080/app' } } }, 'agent.yaml', {});
    const deps: AgentAdminDeps = {
      started: new Date(),
      config: () => config,
      token: () => ({ agentId: 'site-a', tokenId: 'abcd', expiresAt: new Date(Date.now() + 3600_000) }),
      relays: () => [{
        relay: 'wss://relay.example/_ctbridge/agent', state: 'waiting to reconnect', connectionId: undefined, connectedSince: undefined,
        attempts: 3, reconnects: 1, openExchanges: 0, bytesIn: 0, bytesOut: 0,
        lastProblem: { at: new Date().toISOString(), message: `relay refused: ${HOSTILE}`, code: 'CTB_TOKEN_INVALID' },
      }],
      publicUrls: () => ({}),
      counts: () => new Map([['web', { requests: 4, failures: 1, open: 0 }]]),
      recentFailures: () => [{ at: new Date().toISOString(), tunnel: 'web', code: 'CTB_TARGET_TIMEOUT', message: 'the target did not answer' }],
      metrics: new AgentMetrics({ relays: () => [], tokenSecondsLeft: () => undefined }),
      ready: () => ({ ready: false, reason: 'not connected to a relay yet' }),
      reload: async () => ({ ok: true, message: '' }),
    };
    const html = agentAdminRoutes(deps).page();
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('<span class="state notready">not ready</span>');
    expect(html).toContain('<td class="bad">waiting to reconnect</td>');
    expect(html).toContain('<dt>relay connections</dt><dd class="bad">0 of 1 connected</dd>');
    expect(html).toMatch(/<dt>token<\/dt><dd class="warn">abcd, expires \S+Z \(in (59m \d+s|1h 0m)\)<\/dd>/);
    expect(html).toContain('relay refused: &lt;script&gt;');
    expect(html).not.toContain(':pw@');
    expect(html).toContain('<td>web</td><td>http://user:[REDACTED]@intranet:8080/app</td><td>not connected yet</td><td class="num">4</td><td class="num warn">1</td>');
    expect(html).toContain('<h2>Recent target failures (1, newest first)</h2>');
    expect(html).toContain('<td>CTB_TARGET_TIMEOUT</td><td>the target did not answer</td>');
  });
});
