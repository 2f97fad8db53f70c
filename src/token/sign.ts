/**
 * Signing agent tokens (`ctbridge token`): a JWT with sub = agent id,
 * tunnels, iss, aud, iat, exp and a random jti, signed HS256 with a shared
 * secret or EdDSA / ES256 with a private key; a key id goes in the header as
 * `kid`.
 */
import { createPrivateKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTHeaderParameters } from 'jose';
import { CtbridgeError } from '../errors.js';
import { KEY_ID_PATTERN, show } from './claims.js';
import { algOf, parsePem, type SigningKey } from './keys.js';

export interface SignAgentTokenOptions {
  agentId: string;
  tunnels: readonly string[];
  ttlMs: number;
  key: SigningKey;
  issuer?: string;
  audience?: string;
}

/** A new token id: 16 hex characters (64 random bits). */
export function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

export async function signAgentToken(o: SignAgentTokenOptions): Promise<string> {
  if (!o.agentId) throw new CtbridgeError('CTB_CONFIG_INVALID', 'agent id must not be empty');
  if (!o.tunnels.length) throw new CtbridgeError('CTB_CONFIG_INVALID', `agent ${o.agentId}: list at least one tunnel`);
  if (!(o.ttlMs > 0) || !Number.isFinite(o.ttlMs)) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token ttl must be a positive duration');
  const { id } = o.key;
  if (id !== undefined && !KEY_ID_PATTERN.test(id)) {
    throw new CtbridgeError('CTB_CONFIG_INVALID', `key id ${show(id)} must be 1 to 64 letters, digits, ".", "_" or "-"`);
  }
  let alg: string;
  let key: KeyObject;
  if ('secret' in o.key) {
    if (!o.key.secret) throw new CtbridgeError('CTB_CONFIG_INVALID', 'token secret must not be empty');
    [alg, key] = ['HS256', createSecretKey(Buffer.from(o.key.secret, 'utf8'))];
  } else {
    const pem = o.key.privateKeyPem;
    key = parsePem(() => createPrivateKey(pem), 'token private key');
    alg = algOf(key, o.key.alg);
  }
  const header: JWTHeaderParameters = { alg, typ: 'JWT' };
  if (id !== undefined) header.kid = id;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tunnels: [...o.tunnels] })
    .setProtectedHeader(header)
    .setSubject(o.agentId)
    .setIssuer(o.issuer ?? 'ctbridge')
    .setAudience(o.audience ?? 'ctbridge')
    .setIssuedAt(now)
    .setExpirationTime(now + Math.ceil(o.ttlMs / 1000))
    .setJti(newTokenId())
    .sign(key);
}
