import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { LINUX_BUNDLES, relayTrust, systemStore } from '../../../agent/trust.js';

const PEM = readFileSync(new URL('../../fixtures/config/tls/relay.crt', import.meta.url), 'utf8');

describe('relay trust sources', () => {
  it('uses tls.getCACertificates("system") where Node has it', () => {
    expect(systemStore(() => [PEM, PEM], 'win32')).toEqual({ certs: [PEM], from: 'tls.getCACertificates' });
  });

  it('on older Node reads the Linux distribution bundle, and says why on Windows', () => {
    const files: Record<string, string> = { [LINUX_BUNDLES[1]]: `${PEM}\n${PEM}` };
    const read = (f: string) => {
      if (!(f in files)) throw new Error('ENOENT');
      return files[f];
    };
    expect(systemStore(null, 'linux', read)).toMatchObject({ from: LINUX_BUNDLES[1], certs: [PEM.trim(), PEM.trim()] });
    expect(systemStore(null, 'linux', () => { throw new Error('ENOENT'); })).toMatchObject({ reason: expect.stringContaining('no system CA bundle found') });
    expect(systemStore(null, 'win32')).toMatchObject({ reason: expect.stringContaining('Windows certificate store (it needs Node 22.15 or later') });
  });

  it('bundled only leaves Node its defaults; system and ca: are added; an unavailable store is a warning', () => {
    const store = () => ({ certs: [PEM], from: 'test' });
    expect(relayTrust({ trust: ['bundled'], ca: undefined }, store).ca).toBeUndefined();
    const both = relayTrust({ trust: ['bundled', 'system'], ca: { file: '/etc/corp.pem', text: 'CORP' } }, store);
    expect(both.ca).toEqual([...tls.rootCertificates, PEM, 'CORP']);
    expect(both.sources).toEqual([`bundled (Node's ${tls.rootCertificates.length} roots)`, 'system (test, 1 certificates)', 'ca: /etc/corp.pem']);
    const missing = relayTrust({ trust: ['system'], ca: undefined }, () => ({ reason: 'no store' }));
    expect(missing).toMatchObject({ ca: [], sources: [] });
    expect(missing.warning).toContain('no store');
    expect(missing.systemUnreadable).toBe('no store');
    expect(both.systemUnreadable).toBeUndefined();
  });

  it('the dial says trust: names system as configured, even when the store cannot be read (for the certificate hint)', async () => {
    const { createRelayDial } = await import('../../../agent/forward-proxy.js');
    const { parseAgentConfig } = await import('../../../src/config/index.js');
    const config = parseAgentConfig({ relay: 'wss://relay.example.com/_ctbridge/agent', token: 'x.y.z', proxy: 'none', trust: ['system'], tunnels: { t: { target: 'http://127.0.0.1:9' } } }, 'agent.yaml', {});
    const dial = createRelayDial(config, {}, relayTrust(config, () => ({ reason: 'no store' })));
    expect(dial).toMatchObject({ trustsSystem: true, systemUnreadable: 'no store' });
  });
});
