import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeAgentConfig, describeRelayConfig } from '../../../src/config/describe.js';
import { loadAgentConfig, loadRelayConfig } from '../../../src/config/load.js';
import { parseAgentConfig } from '../../../src/config/agent-config.js';
import { parseRelayConfig } from '../../../src/config/relay-config.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');
const SECRET = 'do-not-print-this-secret-0123456789';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';

describe('describeRelayConfig', () => {
  it('summarises tunnels and masks the secret', () => {
    const cfg = parseRelayConfig(
      {
        auth: { secret: SECRET },
        tunnels: {
          cioc: { kind: 'clienttracker', clientTracker: { rpcUrl: 'https://ct.example/rpc/' } },
          ucws: {},
        },
      },
      'relay.yaml',
      {},
    );
    const text = describeRelayConfig(cfg);
    expect(text).toContain('tunnels: cioc (clienttracker, rpc https://ct.example/rpc/), ucws (http)');
    expect(text).toContain('listen: 127.0.0.1:8080 (http)');
    expect(text).toContain('agent endpoint: ws://127.0.0.1:8080/_ctbridge/agent');
    expect(text).toContain('auth: HS256 shared secret ****; audience ctbridge, issuer ctbridge');
    expect(text).toContain('limits: request body 100MiB, response body 10 MiB (default, clienttracker tunnels), headers 16KiB, 1000 streams per agent');
    expect(text).not.toContain(SECRET);
  });

  it('says where an env secret came from and describes key files', () => {
    const env = parseRelayConfig({}, 'relay.yaml', { CTBRIDGE_JWT_SECRET: SECRET });
    expect(describeRelayConfig(env)).toContain('HS256 shared secret **** (from CTBRIDGE_JWT_SECRET)');
    expect(describeRelayConfig(env)).not.toContain(SECRET);
    const full = describeRelayConfig(loadRelayConfig(join(FIXTURES, 'relay.yaml'), {}));
    expect(full).toContain('listen: [::1]:9443 (https, cert ');
    expect(full).toContain('host routing: <tunnel>.tunnels.example.com');
    expect(full).toContain('cioc (clienttracker, rpc https://ct.example/rpc/, from 198.51.100.0/24, 2001:db8::/32, 2 allowed paths)');
    expect(full).not.toContain('BEGIN');
  });
});

describe('describeAgentConfig', () => {
  it('lists tunnels and masks token and proxy credentials', () => {
    const text = describeAgentConfig(loadAgentConfig(join(FIXTURES, 'agent.yaml'), {}));
    expect(text.split('\n')).toEqual(
      expect.arrayContaining([
        'relay: wss://relay.example.com/_ctbridge/agent',
        'token: ****',
        'proxy: http://***@proxy.corp:3128/',
        'tunnel ucws → http://127.0.0.1:7224',
        `tunnel app → https://intranet.corp/app (host header intranet.corp:443, ca ${join(FIXTURES, 'tls/relay.crt')}, TLS verification off, 2 allowed paths)`,
        'tunnel keep → http://[::1]:8000 (host header preserved)',
        'egress: listen 127.0.0.1:8181, from 10.1.0.0/16, max body 64KiB',
      ]),
    );
    expect(text).not.toMatch(/proxyuser|proxypass|eyJ/);
  });

  it('masks an env token and target credentials', () => {
    const cfg = parseAgentConfig(
      { relay: 'ws://r', tunnels: { t: { target: 'http://svc:pw123@h:81/' } } },
      'agent.yaml',
      { CTBRIDGE_AGENT_TOKEN: TOKEN },
    );
    const text = describeAgentConfig(cfg);
    expect(text).toContain('token: **** (from CTBRIDGE_AGENT_TOKEN)');
    expect(text).toContain('tunnel t → http://***@h:81');
    expect(text).toContain('proxy: from environment');
    expect(text).not.toMatch(/pw123|eyJ/);
  });
});
