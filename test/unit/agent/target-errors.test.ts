import { errors as undiciErrors } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { requestTimeoutError, TARGET_FAILURES, targetError, type TargetFailureContext } from '../../../agent/target-errors.js';
import { createTunnelTarget } from '../../../agent/target-pool.js';
import { parseAgentConfig } from '../../../src/config/index.js';
import { CtbridgeError, type ErrorCode } from '../../../src/errors.js';

const config = parseAgentConfig({
  relay: 'wss://relay.example.com',
  token: 'a.b.c',
  tunnels: { ucws: { target: 'http://user:pw@127.0.0.1:7224/base/', timeouts: { connect: '2500ms', idle: '20s', request: '5m' } } },
}, 'agent.yaml', {});
const target = createTunnelTarget(config.tunnels.ucws, 1);
afterAll(() => target.pool.close());

const ctx: TargetFailureContext = { target, file: 'agent.yaml', responseStarted: false };
const errno = (code: string, message = `x ${code}`) => Object.assign(new Error(message), { code });

describe('the tunnel target', () => {
  it('splits the target URL: origin without user-info, base path, Basic credentials', () => {
    expect(target.origin).toBe('http://127.0.0.1:7224');
    expect(target.host).toBe('127.0.0.1:7224');
    expect(target.basePath).toBe('/base');
    expect(target.authorization).toBe(`Basic ${Buffer.from('user:pw').toString('base64')}`);
  });
});

/** What each undici failure becomes: code, and the seconds it carries as data (timeouts). */
const EXPECTED: Record<string, { code: ErrorCode; seconds?: number }> = {
  UND_ERR_CONNECT_TIMEOUT: { code: 'CTB_TARGET_TIMEOUT', seconds: 2.5 },
  UND_ERR_HEADERS_TIMEOUT: { code: 'CTB_TARGET_TIMEOUT', seconds: 20 },
  UND_ERR_BODY_TIMEOUT: { code: 'CTB_TARGET_TIMEOUT', seconds: 20 },
  UND_ERR_SOCKET: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_HEADERS_OVERFLOW: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR_RES_EXCEEDED_MAX_SIZE: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR_RESPONSE: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR_INFO: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: { code: 'CTB_BAD_REQUEST' },
  UND_ERR_INVALID_ARG: { code: 'CTB_BAD_REQUEST' },
  UND_ERR_NOT_SUPPORTED: { code: 'CTB_BAD_REQUEST' },
  UND_ERR_INVALID_RETURN_VALUE: { code: 'CTB_PROTOCOL' },
  UND_ERR_ABORTED: { code: 'CTB_CANCELLED' },
  UND_ERR_ABORT: { code: 'CTB_CANCELLED' },
  UND_ERR_CLOSED: { code: 'CTB_SHUTTING_DOWN' },
  UND_ERR_DESTROYED: { code: 'CTB_SHUTTING_DOWN' },
  UND_ERR_PRX_TLS: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_SOCKS5: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_BPL_MISSING_UPSTREAM: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_REQ_RETRY: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_MAX_ORIGINS_REACHED: { code: 'CTB_TARGET_UNREACHABLE' },
  UND_ERR_WS_MESSAGE_SIZE_EXCEEDED: { code: 'CTB_TARGET_BAD_RESPONSE' },
  UND_ERR: { code: 'CTB_TARGET_BAD_RESPONSE' },
};

describe('TARGET_FAILURES', () => {
  it('has exactly the codes this table expects', () => {
    expect(Object.keys(TARGET_FAILURES).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('maps every error code undici can raise', () => {
    // The errors' constructors set their codes; a few need their extra arguments.
    const codes = new Set<string>();
    for (const [name, ErrorClass] of Object.entries(undiciErrors)) {
      const C = ErrorClass as unknown as new (...args: unknown[]) => { code?: string };
      const e = name === 'RequestRetryError' || name === 'ResponseError' ? new C('m', 500, { headers: {}, data: {}, body: {} }) : new C('m');
      if (e.code && e.code.startsWith('UND_ERR')) codes.add(e.code);
    }
    expect(codes.size).toBeGreaterThan(20);
    for (const code of codes) expect(Object.hasOwn(TARGET_FAILURES, code), code).toBe(true);
  });

  it.each(Object.entries(EXPECTED))('%s → %s', (code, expected) => {
    const cause = errno(code, `undici says ${code}`);
    const e = targetError(cause, ctx);
    expect(e).toBeInstanceOf(CtbridgeError);
    expect(e.code).toBe(expected.code);
    expect(e.message.trim().length).toBeGreaterThan(10);
    expect(e.cause).toBe(cause);
    if (expected.seconds === undefined) expect(e.params.seconds).toBeUndefined();
    else expect(e.params).toEqual({ seconds: expected.seconds });
    // Never the credentials of the target URL.
    expect(e.userMessage).not.toContain('user:pw');
    expect(e.userMessage).not.toContain(target.authorization);
  });

  it('says where the time limits are configured, with the configured durations', () => {
    const connect = targetError(errno('UND_ERR_CONNECT_TIMEOUT'), ctx);
    expect(connect.message).toBe("the agent could not connect to http://127.0.0.1:7224 for tunnel 'ucws' within 2.5s");
    expect(connect.hint).toContain("raise agent.yaml's tunnels.ucws.timeouts.connect");
    const headers = targetError(errno('UND_ERR_HEADERS_TIMEOUT'), ctx);
    expect(headers.message).toBe("http://127.0.0.1:7224 (tunnel 'ucws') sent nothing for 20s before its response headers");
    expect(headers.hint).toBe("if the service is just slow, raise agent.yaml's tunnels.ucws.timeouts.idle");
    expect(targetError(errno('UND_ERR_BODY_TIMEOUT'), ctx).message).toContain('sent nothing for 20s in the middle of its response body');
  });

  it('tells a connection closed before the answer from one closed in the middle of it', () => {
    expect(targetError(errno('UND_ERR_SOCKET'), ctx).message).toBe("http://127.0.0.1:7224 (tunnel 'ucws'): the target closed the connection without answering");
    expect(targetError(errno('UND_ERR_SOCKET'), { ...ctx, responseStarted: true }).message).toBe("http://127.0.0.1:7224 (tunnel 'ucws'): the target closed the connection in the middle of its answer");
  });

  it('the whole-request timeout carries its seconds', () => {
    const e = requestTimeoutError(target, 'agent.yaml');
    expect(e).toMatchObject({ code: 'CTB_REQUEST_TIMEOUT', params: { seconds: 300 } });
    expect(e.message).toBe("the request to http://127.0.0.1:7224 (tunnel 'ucws') took longer than 5m");
    expect(e.hint).toBe("if the service is just slow, raise agent.yaml's tunnels.ucws.timeouts.request");
  });
});

describe('targetError: Node socket, DNS and TLS errors', () => {
  it('names tunnel and target origin (never the credentials) on connection refused', () => {
    const e = targetError(errno('ECONNREFUSED'), ctx);
    expect(e.code).toBe('CTB_TARGET_UNREACHABLE');
    expect(e.userMessage).toBe(
      "the agent could not connect to http://127.0.0.1:7224 for tunnel 'ucws': connection refused. check that the service is running and that agent.yaml's tunnels.ucws.target is right",
    );
  });

  it('classifies DNS, routing, TLS and timeouts', () => {
    expect(targetError(errno('ENOTFOUND'), ctx)).toMatchObject({ code: 'CTB_TARGET_UNREACHABLE' });
    expect(targetError(errno('ENOTFOUND'), ctx).message).toContain('host name not found');
    expect(targetError(errno('EAI_AGAIN'), ctx).message).toContain('host name not found');
    expect(targetError(errno('EHOSTUNREACH'), ctx).message).toContain('no route to host');
    expect(targetError(errno('SELF_SIGNED_CERT_IN_CHAIN'), ctx)).toMatchObject({ code: 'CTB_TARGET_UNREACHABLE' });
    expect(targetError(errno('SELF_SIGNED_CERT_IN_CHAIN'), ctx).hint).toContain('tunnels.ucws.ca');
    expect(targetError(errno('ERR_TLS_CERT_ALTNAME_INVALID'), ctx).message).toContain("the target's TLS certificate was not accepted (ERR_TLS_CERT_ALTNAME_INVALID)");
    expect(targetError(errno('ERR_SSL_WRONG_VERSION_NUMBER'), ctx).message).toContain('TLS handshake failed (ERR_SSL_WRONG_VERSION_NUMBER)');
    expect(targetError(errno('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'), ctx).message).toContain('TLS handshake failed');
    expect(targetError(errno('ETIMEDOUT'), ctx)).toMatchObject({ code: 'CTB_TARGET_TIMEOUT' });
  });

  it('a plain reset or broken pipe is the target closing the connection', () => {
    for (const code of ['ECONNRESET', 'EPIPE']) {
      expect(targetError(errno(code), ctx).message).toBe("http://127.0.0.1:7224 (tunnel 'ucws'): the target closed the connection without answering");
    }
  });

  it("llhttp's parse errors are a bad response", () => {
    const e = targetError(errno('HPE_INVALID_CONSTANT'), ctx);
    expect(e.code).toBe('CTB_TARGET_BAD_RESPONSE');
    expect(e.message).toContain('HPE_INVALID_CONSTANT');
  });

  it('passes a CtbridgeError through, and turns anything else into CTB_TARGET_UNREACHABLE', () => {
    const ours = new CtbridgeError('CTB_CANCELLED', 'gone');
    expect(targetError(ours, ctx)).toBe(ours);
    expect(targetError(new Error('weird'), ctx)).toMatchObject({ code: 'CTB_TARGET_UNREACHABLE' });
    expect(targetError(undefined, ctx).code).toBe('CTB_TARGET_UNREACHABLE');
  });
});
