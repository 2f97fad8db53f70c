/**
 * NTLM messages for proxy authentication (the three-message handshake the
 * agent runs on one proxy connection), encoded by httpntlm's NTLM module.
 * It hashes with its bundled pure-JS MD4 (js-md4): Node's OpenSSL 3 has no
 * MD4. Always NTLMv2: the proxy's challenge is treated as offering extended
 * session security, so the library never falls back to NTLMv1/LM responses.
 */
import { hostname } from 'node:os';
import ntlm from 'httpntlm/ntlm.js';

/** NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY: httpntlm sends NTLMv2 responses when the challenge has it. */
const EXTENDED_SECURITY = 0x00080000;
const NEGOTIATE_TARGET_INFO = 0x00800000;

export interface NtlmCredentials {
  username: string;
  domain: string;
  password: string;
}

function workstation(): string {
  return hostname().split('.')[0].slice(0, 15);
}

/** The first message: `NTLM <base64>` for Proxy-Authorization. */
export function ntlmNegotiate(creds: Pick<NtlmCredentials, 'domain'>): string {
  return ntlm.createType1Message({ domain: creds.domain, workstation: workstation() });
}

/**
 * The third message from the proxy's challenge (the `NTLM <base64>` value of
 * its Proxy-Authenticate header). Throws an Error naming what is wrong with
 * a malformed challenge (hostile input: never crashes the agent).
 */
export function ntlmAuthenticate(challenge: string, creds: NtlmCredentials): string {
  const token = /^NTLM\s+([A-Za-z0-9+/=]+)\s*$/i.exec(challenge)?.[1];
  if (!token) throw new Error('the proxy sent no NTLM challenge');
  const raw = Buffer.from(token, 'base64');
  if (raw.length < 32 || raw.subarray(0, 8).toString('latin1') !== 'NTLMSSP\0' || raw.readUInt32LE(8) !== 2) {
    throw new Error('the proxy sent a malformed NTLM challenge');
  }
  let failure: Error | undefined;
  let type2: ReturnType<typeof ntlm.parseType2Message>;
  try {
    type2 = ntlm.parseType2Message(`NTLM ${token}`, (err) => (failure = err));
  } catch (err) {
    failure = err as Error;
    type2 = null;
  }
  if (!type2 || failure) throw new Error('the proxy sent a malformed NTLM challenge');
  // NTLMv2 needs the target info block; an empty one (just the terminator the library adds) is valid.
  const hasInfo = (type2.negotiateFlags & NEGOTIATE_TARGET_INFO) !== 0 && type2.targetInfo !== undefined;
  const forV2 = { ...type2, negotiateFlags: type2.negotiateFlags | EXTENDED_SECURITY, targetInfo: hasInfo ? type2.targetInfo : Buffer.alloc(0) };
  return ntlm.createType3Message(forV2, { username: creds.username, password: creds.password, domain: creds.domain, workstation: workstation() });
}
