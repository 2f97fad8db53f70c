/**
 * `ctbridge status` text: pure functions from the status JSON and a fixed
 * "now" to the tables an IT admin reads.
 */
import { describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../agent/admin.js';
import { FAILURES_SHOWN, cell, formatAgentStatus, formatRelayStatus, formatStatus, renderTable } from '../../../cli/status.js';
import type { RelayStatus } from '../../../relay/admin.js';
import { expiryText } from '../../../src/admin/page.js';

const NOW = new Date('2027-01-10T12:00:00.000Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000).toISOString();

function relayStatus(over: Partial<RelayStatus> = {}): RelayStatus {
  return {
    role: 'relay',
    software: 'ctbridge/0.1.0',
    config: '/etc/ctbridge/relay.yaml',
    startedAt: minutesAgo(125),
    uptimeSeconds: 125 * 60,
    ready: true,
    readiness: 'listening on 0.0.0.0:8080',
    listen: '0.0.0.0:8080',
    publicUrl: 'https://relay.example.com',
    tunnels: [
      { name: 'cioc', kind: 'clienttracker', configured: true, agents: 2, state: 'serving' },
      { name: 'ucws', kind: 'http', configured: true, agents: 0, state: 'no agent' },
    ],
    agents: [
      {
        connectionId: 'c1', agentId: 'acme-1', tunnels: ['cioc'], remoteAddress: '203.0.113.7', since: minutesAgo(62), software: 'ctbridge/0.1.0',
        hostname: 'srv-ct01', openExchanges: 3, bytesIn: 1_572_864, bytesOut: 2048, tokenId: 'aaaa', keyId: undefined,
        tokenExpiresAt: '2027-02-27T08:00:00.000Z', draining: false,
      },
      {
        connectionId: 'c2', agentId: 'acme-2', tunnels: ['cioc'], remoteAddress: '203.0.113.8', since: minutesAgo(1), software: 'ctbridge/0.1.0',
        hostname: 'srv-ct02', openExchanges: 0, bytesIn: 10, bytesOut: 0, tokenId: 'bbbb', keyId: 'k1',
        tokenExpiresAt: '2027-01-10T10:00:00.000Z', draining: true,
      },
    ],
    ...over,
  };
}

function agentStatus(over: Partial<AgentStatus> = {}): AgentStatus {
  return {
    role: 'agent',
    software: 'ctbridge/0.1.0',
    config: 'C:\\ProgramData\\ctbridge\\agent.yaml',
    startedAt: minutesAgo(3),
    uptimeSeconds: 180,
    ready: false,
    readiness: 'relay refused the token',
    agentId: 'acme-1',
    tokenId: '3f9c0a1b2c3d4e5f',
    tokenExpiresAt: '2027-01-20T12:00:00.000Z',
    relays: [
      {
        relay: 'wss://relay.example.com/_ctbridge/agent', state: 'waiting to reconnect', connectionId: undefined, connectedSince: undefined,
        attempts: 4, reconnects: 2, openExchanges: 0, bytesIn: 0, bytesOut: 0,
        lastProblem: { at: minutesAgo(0.5), message: 'relay refused the agent: agent token expired', code: 'CTB_TOKEN_INVALID' },
      },
    ],
    tunnels: [
      { name: 'cioc', target: 'http://intranet/ct', publicUrl: undefined, requests: 12, failures: 1, open: 0 },
    ],
    recentFailures: [
      { at: minutesAgo(2), tunnel: 'cioc', code: 'CTB_TARGET_TIMEOUT', message: "the target http://intranet did not answer within 30 s for tunnel 'cioc'" },
    ],
    ...over,
  };
}

describe('renderTable', () => {
  it('pads columns to the widest value, right-aligns numbers, leaves no trailing blanks', () => {
    expect(renderTable(['NAME', 'N', 'NOTE'], [['a', 5, 'x'], ['longer', 12, '']], [false, true, false])).toBe(
      ['NAME     N  NOTE', 'a        5  x', 'longer  12'].join('\n'),
    );
  });

  it('shows control characters as U+FFFD, so an agent string cannot drive the terminal', () => {
    expect(cell('evil\u001b[2J\u001b]0;title\u0007host\nnext')).toBe('evil\ufffd[2J\ufffd]0;title\ufffdhost\ufffdnext');
    expect(renderTable(['HOST'], [['a\u001b[31mred']])).toBe('HOST\na\ufffd[31mred');
    expect(cell(undefined)).toBe('');
    expect(cell(0)).toBe('0');
  });
});

describe('expiryText', () => {
  it('says when, and how long until or since', () => {
    expect(expiryText('2027-02-27T08:00:00.000Z', NOW)).toBe('2027-02-27T08:00:00Z (in 47d 20h)');
    expect(expiryText('2027-01-10T10:00:00.000Z', NOW)).toBe('2027-01-10T10:00:00Z (EXPIRED 2h 0m ago)');
    expect(expiryText(undefined, NOW)).toBe('');
  });
});

describe('formatRelayStatus', () => {
  it('prints a header, the tunnels and the agents, like cloudflared tunnel info', () => {
    expect(formatRelayStatus(relayStatus(), NOW)).toBe(`relay 0.0.0.0:8080: ready (listening on 0.0.0.0:8080)
  public URL  https://relay.example.com
  listen      0.0.0.0:8080
  uptime      2h 5m
  software    ctbridge/0.1.0
  config      /etc/ctbridge/relay.yaml

TUNNEL  KIND           STATE     AGENTS  IN RELAY.YAML
cioc    clienttracker  serving        2  yes
ucws    http           no agent       0  yes

AGENT             HOST      TUNNELS  FROM         CONNECTED  OPEN       IN      OUT  KEY  TOKEN EXPIRES
acme-1            srv-ct01  cioc     203.0.113.7  1h 2m         3  1.5 MiB  2.0 KiB  -    2027-02-27T08:00:00Z (in 47d 20h)
acme-2 (leaving)  srv-ct02  cioc     203.0.113.8  1m 0s         0     10 B      0 B  k1   2027-01-10T10:00:00Z (EXPIRED 2h 0m ago)
`);
  });

  it('shows the cluster: this node and each peer with its state, tunnels and last problem', () => {
    const text = formatRelayStatus(relayStatus({
      cluster: {
        nodeId: 'relay-1', listen: '0.0.0.0:7946', synced: true,
        peers: [
          { address: '10.0.0.12:7946', nodeId: 'relay-2', state: 'connected', tunnels: ['cioc', 'ucws'], lastProblem: undefined },
          { address: '10.0.0.13:7946', nodeId: undefined, state: 'connecting', tunnels: [], lastProblem: 'connect ECONNREFUSED 10.0.0.13:7946' },
        ],
      },
    }), NOW);
    expect(text).toContain(`cluster: node relay-1, listening on 0.0.0.0:7946
NODE     ADDRESS         STATE       TUNNELS    LAST PROBLEM
relay-2  10.0.0.12:7946  connected   cioc,ucws
?        10.0.0.13:7946  connecting             connect ECONNREFUSED 10.0.0.13:7946
`);
  });

  it('says NOT READY, and that nothing is connected', () => {
    const text = formatRelayStatus(relayStatus({ ready: false, readiness: 'shutting down', agents: [], tunnels: [] }), NOW);
    expect(text.split('\n')[0]).toBe('relay 0.0.0.0:8080: NOT READY (shutting down)');
    expect(text).toContain('\nNo tunnel is configured and no agent is connected.\n\nNo agent is connected.\n');
  });
});

describe('formatAgentStatus', () => {
  it('prints a header, the relay connections with their last problem, the tunnels and the recent failures', () => {
    expect(formatAgentStatus(agentStatus(), NOW)).toBe(`agent acme-1: NOT READY (relay refused the token)
  token     3f9c0a1b2c3d4e5f, expires 2027-01-20T12:00:00Z (in 10d 0h)
  uptime    3m 0s
  software  ctbridge/0.1.0
  config    C:\\ProgramData\\ctbridge\\agent.yaml

RELAY                                    STATE                 CONNECTED  OPEN   IN  OUT  RECONNECTS  LAST PROBLEM
wss://relay.example.com/_ctbridge/agent  waiting to reconnect                0  0 B  0 B           2  relay refused the agent: agent token expired (30s ago)

TUNNEL  TARGET              PUBLIC URL           REQUESTS  FAILED  OPEN
cioc    http://intranet/ct  (not connected yet)        12       1     0

Recent target failures (newest first):
WHEN    TUNNEL  CODE                WHAT HAPPENED
2m 0s ago  cioc    CTB_TARGET_TIMEOUT  the target http://intranet did not answer within 30 s for tunnel 'cioc'
`.replace('WHEN    TUNNEL', 'WHEN       TUNNEL'));
  });

  it(`shows the newest ${FAILURES_SHOWN} failures and says how many more the JSON has`, () => {
    const many = Array.from({ length: 15 }, (_, i) => ({ at: minutesAgo(i), tunnel: 'cioc', code: 'CTB_TARGET_UNREACHABLE', message: `failure ${i}` }));
    const text = formatStatus(agentStatus({ recentFailures: many, ready: true, readiness: 'connected' }), NOW);
    expect(text).toContain('failure 9\n');
    expect(text).not.toContain('failure 10');
    expect(text).toContain('... and 5 more (ctbridge status --json lists them all)\n');
    expect(text.split('\n')[0]).toBe('agent acme-1: ready (connected)');
  });

  it('says so when nothing failed and nothing is configured', () => {
    const text = formatAgentStatus(agentStatus({ recentFailures: [], relays: [], tunnels: [], agentId: undefined, tokenId: undefined, tokenExpiresAt: undefined }), NOW);
    expect(text.split('\n')[0]).toBe('agent (token unreadable): NOT READY (relay refused the token)');
    expect(text).not.toContain('\n  token');
    expect(text).toContain('No relay is configured.\n\nNo tunnel is configured.\n\nNo target failures since the agent started.\n');
  });
});
