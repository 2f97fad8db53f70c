import { tokenSigningKey } from '../src/agent-auth.js';
import { loadRelayConfig, parseDuration } from '../src/config/index.js';
import { tunnelName } from '../src/config/values.js';
import { ConfigError } from '../src/errors.js';
import { untrusted } from '../src/log-text.js';
import { decodeTokenUnverified, signAgentToken } from '../src/token.js';

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * `ctbridge token`: prints only the token on stdout so `TOKEN=$(ctbridge token ...)`
 * works, and one line on stderr saying what was issued (token id, agent,
 * tunnels, key, expiry): the token id is what auth.revoked.tokens takes.
 */
export async function issueToken(configFile: string, agentId: string, tunnelsArg: string, ttl: string): Promise<void> {
  const config = loadRelayConfig(configFile);
  const tunnels = tunnelsArg.split(',').map((t) => t.trim()).filter(Boolean);
  // An agent id is shown in logs and status pages: no control, bidi or zero-width characters.
  if (agentId.length > 128 || untrusted(agentId, 128) !== agentId) {
    throw new ConfigError('--agent', '', `expected an agent id of at most 128 printable characters (no control, bidi or zero-width characters), got ${JSON.stringify(untrusted(agentId, 64))}`);
  }
  // The same rule as relay.yaml's and agent.yaml's tunnel names: a token for a
  // name no relay serves (`<b>x</b>`) would only fail later, at the agent.
  for (const t of tunnels) {
    try {
      tunnelName(t);
    } catch (err) {
      throw new ConfigError('--tunnels', '', (err as Error).message);
    }
  }
  let ttlMs: number;
  try {
    ttlMs = parseDuration(ttl);
  } catch (err) {
    throw new ConfigError('--ttl', '', (err as Error).message);
  }
  const { auth } = config;
  const signing = tokenSigningKey(auth);
  if (!signing) {
    const key = auth.keys[0]?.where === 'auth.publicKey' ? 'auth.privateKey' : 'auth.keys';
    throw new ConfigError(configFile, key, key === 'auth.privateKey'
      ? 'needed to sign tokens when the relay verifies with auth.publicKey (or sign elsewhere with the private key)'
      : 'no key can sign tokens: give one key a secret, or a privateKey next to its publicKey (or sign elsewhere with the private key)');
  }
  const token = await signAgentToken({ agentId, tunnels, ttlMs, key: signing.key, issuer: auth.issuer, audience: auth.audience });
  process.stdout.write(`${token}\n`);
  const claims = decodeTokenUnverified(token);
  process.stderr.write(
    `token id ${claims.tokenId} for agent ${untrusted(agentId, 64)} (tunnels ${untrusted(tunnels.join(','), 200)}) ` +
      `signed with ${signing.label}, expires ${isoSeconds(claims.expiresAt)}\n`,
  );
}
