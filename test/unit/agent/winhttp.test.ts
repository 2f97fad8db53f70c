import { describe, expect, it } from 'vitest';
import { bypassed, parseNetshOutput, parseRegQuery, parseWinHttpSettings, proxyForScheme } from '../../../agent/winhttp.js';

/** The blob Windows writes for `netsh winhttp set proxy proxy.corp:8080 "*.corp;<local>"`. */
function blob(flags: number, proxy: string, bypass: string): Buffer {
  const dword = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  return Buffer.concat([dword(0x18), dword(7), dword(flags), dword(proxy.length), Buffer.from(proxy, 'latin1'), dword(bypass.length), Buffer.from(bypass, 'latin1')]);
}

const NETSH_PROXY = `
Current WinHTTP proxy settings:

    Proxy Server(s) :  http=proxy.corp:8080;https=secure.corp:8443
    Bypass List     :  *.corp;<local>;10.*

`;
const NETSH_DIRECT = `
Current WinHTTP proxy settings:

    Direct access (no proxy server).

`;

describe('WinHTTP proxy settings (proxy: system on Windows)', () => {
  it('parses the WinHttpSettings registry blob, as reg query prints it', () => {
    const hex = blob(3, 'proxy.corp:8080', '*.corp;<local>').toString('hex').toUpperCase();
    const output = `\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\r\n    WinHttpSettings    REG_BINARY    ${hex}\r\n\r\n`;
    expect(parseWinHttpSettings(parseRegQuery(output)!)).toEqual({ proxy: 'proxy.corp:8080', bypass: ['*.corp', '<local>'] });
    // netsh winhttp reset proxy: flags 1 (direct), empty strings.
    expect(parseWinHttpSettings(blob(1, '', ''))).toEqual({ proxy: undefined, bypass: [] });
    expect(parseRegQuery('ERROR: The system was unable to find the specified registry key or value.')).toBeUndefined();
  });

  it('refuses a blob that does not hold together', () => {
    expect(() => parseWinHttpSettings(Buffer.alloc(8))).toThrow('too short');
    const bad = blob(3, 'p:1', '');
    bad.writeUInt32LE(9999, 12);
    expect(() => parseWinHttpSettings(bad)).toThrow('length past the end');
  });

  it('parses netsh winhttp show proxy output', () => {
    expect(parseNetshOutput(NETSH_PROXY)).toEqual({ proxy: 'http=proxy.corp:8080;https=secure.corp:8443', bypass: ['*.corp', '<local>', '10.*'] });
    expect(parseNetshOutput(NETSH_DIRECT)).toEqual({ proxy: undefined, bypass: [] });
    expect(parseNetshOutput('Aktuelle WinHTTP-Proxyeinstellungen: ???')).toBeUndefined();
  });

  it('picks the proxy for the relay scheme and honours the bypass list', () => {
    expect(proxyForScheme('http=proxy.corp:8080;https=secure.corp:8443', 'https')).toBe('http://secure.corp:8443');
    expect(proxyForScheme('proxy.corp:8080', 'https')).toBe('http://proxy.corp:8080');
    expect(proxyForScheme('http=proxy.corp:8080', 'https')).toBe('http://proxy.corp:8080');
    const list = ['*.corp', '<local>', '10.*'];
    expect(bypassed('relay.corp', list)).toBe(true);
    expect(bypassed('RELAY.CORP', list)).toBe(true);
    expect(bypassed('relayhost', list)).toBe(true);
    expect(bypassed('10.1.2.3', list)).toBe(true);
    expect(bypassed('relay.example.com', list)).toBe(false);
    expect(bypassed('corp.example.com', list)).toBe(false);
  });
});
