import { loadRelayConfig, parseDuration } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { signAgentToken } from '../src/token.js';

/** `ctbridge token`: prints only the token on stdout so `TOKEN=$(ctbridge token ...)` works. */
export async function issueToken(configFile: string, agentId: string, tunnelsArg: string, ttl: string): Promise<void> {
  const config = loadRelayConfig(configFile);
  const tunnels = tunnelsArg.split(',').map((t) => t.trim()).filter(Boolean);
  let ttlMs: number;
  try {
    ttlMs = parseDuration(ttl);
  } catch (err) {
    throw new ConfigError('--ttl', '', (err as Error).message);
  }
  const { auth } = config;
  let key;
  if (auth.secret) key = { secret: auth.secret };
  else if (auth.privateKey) key = { privateKeyPem: auth.privateKey.text };
  else throw new ConfigError(configFile, 'auth.privateKey', 'needed to sign tokens when the relay verifies with auth.publicKey (or sign elsewhere with the private key)');
  const token = await signAgentToken({ agentId, tunnels, ttlMs, key, issuer: auth.issuer, audience: auth.audience });
  process.stdout.write(`${token}\n`);
}
