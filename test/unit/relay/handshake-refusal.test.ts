/**
 * relay/handshake-refusal.ts: what an unproven link caller hears, and the
 * dialing node's reading of it.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { publicCloseReason, readRefusal, verifiedTokenCloseReason } from '../../../relay/handshake-refusal.js';
import { CtbridgeError } from '../../../src/errors.js';
import type { TokenFailureReason } from '../../../src/token.js';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function answering(handler: http.RequestListener): Promise<http.IncomingMessage> {
  const server = http.createServer(handler);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const req = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  return res;
}

describe('close reasons for link callers', () => {
  const ID = '0a1b2c3d4e5f6071';

  it('before anything is proved: the public sentence and the request id, within 123 bytes, for every code', () => {
    const reason = publicCloseReason(new CtbridgeError('CTB_TOKEN_INVALID', "agent 'acme-1' is revoked in auth.revoked.agents of relay.yaml"), ID);
    expect(reason).toBe(`The relay refused the on-premise agent for this tunnel; give the request id to the operator (request id ${ID})`);
    // The longest sentences are cut, never the request id.
    const long = publicCloseReason({ code: 'CTB_AGENT_NOT_CONNECTED', params: {} }, ID);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(123);
    expect(long.endsWith(`… (request id ${ID})`)).toBe(true);
  });

  it('after the token was verified: what the operator can do, never a config key', () => {
    const reasons: TokenFailureReason[] = ['expired', 'revoked', 'unknown_key', 'bad_signature', 'wrong_audience', 'wrong_issuer', 'malformed'];
    for (const reason of reasons) {
      const text = verifiedTokenCloseReason({ code: 'CTB_TOKEN_INVALID', params: {}, reason }, ID);
      expect(Buffer.byteLength(text), text).toBeLessThanOrEqual(123);
      expect(text).toMatch(new RegExp(`\\(request id ${ID}\\)$`));
      expect(text).not.toMatch(/auth\.|relay\.yaml|cluster\./);
    }
  });
});

describe('readRefusal', () => {
  it('reads the code, sentence and request id of an error body', async () => {
    const res = await answering((_req, r) => r.writeHead(403, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { code: 'CTB_NODE_REFUSED', message: 'This relay node does not accept the connection.', requestId: 'abc' } })));
    expect(await readRefusal(res)).toBe('CTB_NODE_REFUSED: This relay node does not accept the connection. (request id abc)');
  });

  it('regression: a peer that never ends its refusal body is given up on after the bound', async () => {
    const res = await answering((_req, r) => {
      r.writeHead(403, { 'content-type': 'application/json' });
      r.write('{"error":{"code":"CTB_NODE_REFUSED"');
    });
    expect(await readRefusal(res, 200)).toBeUndefined();
  });
});
