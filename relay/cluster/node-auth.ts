/**
 * How relay nodes prove to each other that they belong to the cluster: a
 * short-lived HS256 token signed with `cluster.secret` (the same on every
 * node, never the agents' secret), naming the node. A node's listener for
 * peers refuses anything else.
 */
import { SignJWT, jwtVerify } from 'jose';

const AUDIENCE = 'ctbridge-cluster';
const LIFETIME_S = 60;

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export function signNodeToken(nodeId: string, secret: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(nodeId).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(`${LIFETIME_S}s`).sign(key(secret));
}

/** The node id of a valid token, or undefined. */
export async function verifyNodeToken(token: string | undefined, secret: string): Promise<string | undefined> {
  if (!token) return undefined;
  try {
    const { payload } = await jwtVerify(token, key(secret), { audience: AUDIENCE, algorithms: ['HS256'], clockTolerance: 5 });
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}
