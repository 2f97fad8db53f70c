import { describe, expect, it } from 'vitest';
import ntlmLib from 'httpntlm/ntlm.js';
import { ntlmAuthenticate, ntlmNegotiate } from '../../../agent/ntlm.js';
import { bodyLength, ntlmChallenge, offeredSchemes, parseHead, ProxyProtocolError } from '../../../agent/proxy-response.js';

/** Squid's ntlm_fake_auth challenge (no target info), as captured from squid 5.7. */
const SQUID_CHALLENGE = 'NTLM TlRMTVNTUAACAAAACQAJAK6qqqoGgggAU8fC/PrK4KEAAAAAAAA6AFdPUktHUk9VUA==';

/** A type 2 message with a target info block (as Windows sends). */
function challengeWithTargetInfo(): string {
  const info = Buffer.concat([Buffer.from([2, 0, 8, 0]), Buffer.from('CORP', 'utf16le'), Buffer.from([0, 0, 0, 0])]);
  const buf = Buffer.alloc(48);
  buf.write('NTLMSSP\0', 0, 'latin1');
  buf.writeUInt32LE(2, 8);
  buf.writeUInt32LE(0x00818205, 20); // unicode, request target, NTLM, target info
  Buffer.from('0123456789abcdef', 'hex').copy(buf, 24);
  buf.writeUInt16LE(info.length, 40);
  buf.writeUInt16LE(info.length, 42);
  buf.writeUInt32LE(48, 44);
  return `NTLM ${Buffer.concat([buf, info]).toString('base64')}`;
}

function type3(header: string) {
  const raw = Buffer.from(header.replace(/^NTLM /, ''), 'base64');
  const field = (at: number) => raw.subarray(raw.readUInt32LE(at + 4), raw.readUInt32LE(at + 4) + raw.readUInt16LE(at));
  return { type: raw.readUInt32LE(8), lm: field(12), nt: field(20), domain: field(28), user: field(36) };
}

describe('NTLM messages (httpntlm with its pure-JS MD4)', () => {
  it('computes the NT hash without OpenSSL MD4 (which Node 17+ lacks)', () => {
    expect(ntlmLib.create_NT_hashed_password('Password').toString('hex')).toBe('a4f49c406510bdcab6824ee7c30fd852');
  });

  it('sends a type 1 message, then an NTLMv2 type 3 for squid\'s challenge and for one with target info', () => {
    expect(Buffer.from(ntlmNegotiate({ domain: 'CORP' }).slice(5), 'base64').readUInt32LE(8)).toBe(1);
    for (const challenge of [SQUID_CHALLENGE, challengeWithTargetInfo()]) {
      const msg = type3(ntlmAuthenticate(challenge, { username: 'svc', domain: 'CORP', password: 'pw' }));
      expect(msg.type).toBe(3);
      // NTLMv2: a 16-byte proof + a blob starting 0x0101 (NTLMv1 would be exactly 24 bytes).
      expect(msg.nt.length).toBeGreaterThan(24);
      expect(msg.nt.subarray(16, 18).toString('hex')).toBe('0101');
      expect(msg.lm.length).toBe(24);
    }
  });

  it('refuses hostile challenges with an error, not a crash', () => {
    const creds = { username: 'u', domain: '', password: 'p' };
    expect(() => ntlmAuthenticate('NTLM', creds)).toThrow('no NTLM challenge');
    expect(() => ntlmAuthenticate('NTLM AAAA', creds)).toThrow('malformed');
    const truncated = Buffer.from(challengeWithTargetInfo().slice(5), 'base64').subarray(0, 40);
    truncated.writeUInt32LE(0x00818205, 20);
    expect(() => ntlmAuthenticate(`NTLM ${truncated.toString('base64')}`, creds)).toThrow('malformed');
  });
});

describe('proxy answers to CONNECT', () => {
  it('parses status, repeated headers, keep-alive and body length', () => {
    const res = parseHead('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Basic realm="corp, x"\r\nContent-Length: 12\r\nVia: 1.1 vm (squid/5.7)');
    expect(res).toMatchObject({ status: 407, keepAlive: true });
    expect(offeredSchemes(res)).toEqual(['NTLM', 'Basic']);
    expect(bodyLength(res)).toBe(12);
    expect(parseHead('HTTP/1.0 407 x\r\nProxy-Authenticate: Negotiate, NTLM').keepAlive).toBe(false);
    expect(offeredSchemes(parseHead('HTTP/1.1 407 x\r\nProxy-Authenticate: Negotiate, NTLM'))).toEqual(['Negotiate', 'NTLM']);
    expect(ntlmChallenge(parseHead(`HTTP/1.1 407 x\r\nProxy-Authenticate: ${SQUID_CHALLENGE}`))).toBe(SQUID_CHALLENGE);
    expect(offeredSchemes(parseHead(`HTTP/1.1 407 x\r\nProxy-Authenticate: ${SQUID_CHALLENGE}`))).toEqual(['NTLM']);
  });

  it('refuses what is not HTTP, and bodies it cannot skip', () => {
    expect(() => parseHead('SSH-2.0-OpenSSH')).toThrow(ProxyProtocolError);
    expect(bodyLength(parseHead('HTTP/1.1 407 x\r\nTransfer-Encoding: chunked'))).toBeUndefined();
    expect(bodyLength(parseHead('HTTP/1.1 407 x\r\nContent-Length: 99999999999'))).toBeUndefined();
    expect(bodyLength(parseHead('HTTP/1.1 407 x\r\nContent-Length: 1\r\nContent-Length: 2'))).toBeUndefined();
  });
});
