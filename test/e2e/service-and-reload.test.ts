/**
 * `ctbridge agent service … --dry-run` through the CLI, and SIGHUP reload
 * (`systemctl reload`): a valid new config takes effect in the same process,
 * an invalid one is refused and the running config kept.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startBackend, type Backend } from '../helpers/backend.js';
import { runToEnd, stopAll, tempDir, writeYaml, type CtbridgeProcess } from '../helpers/processes.js';
import { startAgentProcess, startRelayProcess, tokenFor } from '../helpers/tunnel.js';

afterEach(stopAll);

describe('agent service --dry-run', () => {
  it('prints the systemd unit for this install and the commands, and changes nothing', async () => {
    const dir = tempDir();
    const config = writeYaml(dir, 'agent.yaml', {
      relay: 'wss://relay.example',
      token: await tokenFor(['web']),
      tunnels: { web: { target: 'http://127.0.0.1:1' } },
      timeouts: { shutdownGrace: '60s' },
    });
    const r = await runToEnd(['agent', 'service', 'install', '--config', config, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dry run: nothing is changed');
    expect(r.stdout).toContain(`| ExecStart=${process.execPath} `);
    expect(r.stdout).toMatch(/\| ExecStart=\S+ \S+\/bin\/ctbridge\.js agent --config \S+agent\.yaml\n/);
    expect(r.stdout).toContain('| TimeoutStopSec=75s');
    expect(r.stdout).toContain('| ExecReload=/bin/kill -HUP $MAINPID');
    expect(r.stdout).toContain('run systemctl enable --now ctbridge-agent');
  });

  it('shows the Windows plan with --platform windows', async () => {
    const r = await runToEnd(['agent', 'service', 'install', '--config', 'C:\\ProgramData\\ctbridge\\agent.yaml', '--dry-run', '--platform', 'windows']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('write C:\\ProgramData\\ctbridge\\ctbridge-agent-service.xml');
    expect(r.stdout).toContain('<stoptimeout>45 sec</stoptimeout>');
    expect(r.stdout).toContain('run C:\\ProgramData\\ctbridge\\ctbridge-agent-service.exe install');
  });

  it('refuses a config that does not load, before touching anything', async () => {
    const dir = tempDir();
    const config = writeYaml(dir, 'agent.yaml', { relay: 'wss://relay.example', tunnels: {} });
    const r = await runToEnd(['agent', 'service', 'install', '--config', config, '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('token');
  });
});

describe('SIGHUP reload', () => {
  const backends: Backend[] = [];
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.close()));
  });

  it('agent: a new target takes effect without a new process; an invalid config is refused and the old one kept', async () => {
    const a = await startBackend();
    const b = await startBackend();
    backends.push(a, b);
    const relay = await startRelayProcess({ tunnels: { web: { kind: 'http' } } });
    const token = await tokenFor(['web']);
    const agent: CtbridgeProcess = await startAgentProcess({ relayUrl: relay.url, token, tunnels: { web: { target: a.url } } });
    const configFile = String(agent.child.spawnargs[agent.child.spawnargs.indexOf('--config') + 1]);
    const dir = configFile.slice(0, configFile.lastIndexOf('/'));
    const write = (target: string) => writeYaml(dir, 'agent.yaml', { relay: relay.url.replace(/^http/, 'ws'), token, reconnect: { initialDelay: '100ms', maxDelay: '1s' }, tunnels: { web: { target } } });

    expect((await fetch(`${relay.url}/t/web/one`)).status).toBe(200);
    expect(a.seen.map((s) => s.url)).toContain('/one');

    write(b.url);
    agent.child.kill('SIGHUP');
    await agent.waitForLog('config reloaded');
    // Only the target changed: the same connection serves on, with the new target.
    expect(agent.countLogs('tunnel ready')).toBe(1);
    expect((await fetch(`${relay.url}/t/web/two`)).status).toBe(200);
    expect(b.seen.map((s) => s.url)).toContain('/two');
    expect(a.seen.map((s) => s.url)).not.toContain('/two');

    writeFileSync(configFile, 'relay: [this is not\n');
    agent.child.kill('SIGHUP');
    const refused = await agent.waitForLog('reload refused: the config is invalid; the running config stays');
    expect(String(refused.err)).toContain(configFile);
    expect((await fetch(`${relay.url}/t/web/three`)).status).toBe(200);
    expect(b.seen.map((s) => s.url)).toContain('/three');
    expect(agent.child.exitCode).toBeNull();

    expect(await agent.stop('SIGTERM')).toBe(0);
  });

  it('relay: reloads in place; connected agents stay connected', async () => {
    const a = await startBackend();
    backends.push(a);
    const relay = await startRelayProcess({ tunnels: { web: { kind: 'http' } } });
    const agent = await startAgentProcess({ relayUrl: relay.url, tunnels: { web: { target: a.url } } });
    relay.proc.child.kill('SIGHUP');
    await relay.proc.waitForLog('config reloaded');
    expect((await fetch(`${relay.url}/t/web/after-reload`)).status).toBe(200);
    expect(relay.proc.countLogs('relay listening')).toBe(1);
    expect(agent.countLogs('tunnel ready')).toBe(1);
  });
});

