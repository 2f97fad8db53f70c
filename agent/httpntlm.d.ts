/** httpntlm ships no type declarations; its NTLM message module, as the agent uses it. */
declare module 'httpntlm/ntlm.js' {
  export interface Type2Message {
    signature: Buffer;
    type: number;
    negotiateFlags: number;
    serverChallenge: Buffer;
    targetInfo?: Buffer;
    [key: string]: unknown;
  }
  export interface NtlmOptions {
    username?: string;
    password?: string;
    domain?: string;
    workstation?: string;
  }
  /** "NTLM <base64>" */
  export function createType1Message(options: NtlmOptions): string;
  /** Null (after calling `callback` with the error) when the header holds no type 2 message. */
  export function parseType2Message(header: string, callback: (err: Error) => void): Type2Message | null;
  /** "NTLM <base64>" */
  export function createType3Message(type2: Type2Message, options: NtlmOptions): string;
  export function create_NT_hashed_password(password: string): Buffer;
}
