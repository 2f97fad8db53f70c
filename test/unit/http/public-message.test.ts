import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CtbridgeError, ERROR_CODES, type ErrorCode } from '../../../src/errors.js';
import { errorBody } from '../../../src/http/error-response.js';
import { publicMessage, publicMessages } from '../../../src/http/public-message.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('what a public caller reads (issue 12, finding 7)', () => {
  it.each(codes)('%s: one plain sentence, shown in docs/errors.md, naming no config key, file, address or quoted name', (code) => {
    const sentence = publicMessages({ seconds: 30, bytes: 1048576, body: 'request' })[code];
    expect(sentence).toMatch(/^[A-Z][^\n]*\.$/);
    expect(sentence.split(/\.\s/).length).toBe(1);
    for (const leak of ['.yaml', 'auth.', 'tunnels.', 'limits.', 'http://', "'", 'agent id']) expect(sentence).not.toContain(leak);
    expect(doc, `docs/errors.md lacks the sentence for ${code}`).toContain(`| \`${code}\` | ${sentence} |`);
  });

  it("never uses the error's own message or hint, only its code and numbers", () => {
    const err = new CtbridgeError('CTB_TARGET_UNREACHABLE', "the agent could not connect to http://10.1.2.3:8080 for tunnel 'ucws': connection refused", {
      hint: "check agent.yaml's tunnels.ucws.target",
    });
    expect(publicMessage(err)).toBe('The on-premise agent could not reach the service behind this tunnel; if it keeps happening, give the request id to the operator.');
    const revoked = new CtbridgeError('CTB_AGENT_DISCONNECTED', "the tunnel connection closed (code 4401: agent 'acme-1' is revoked in auth.revoked.agents of relay.yaml) during the exchange");
    const body = JSON.stringify(errorBody(revoked, 'abc123'));
    for (const leak of ['acme-1', 'auth.revoked', '4401', 'relay.yaml']) expect(body).not.toContain(leak);
    expect(errorBody(revoked, 'abc123').error).toMatchObject({ code: 'CTB_AGENT_DISCONNECTED', details: 'CTB_AGENT_DISCONNECTED', requestId: 'abc123' });
  });

  it('keeps the numbers a caller can act on, and a caller-side problem for malformed requests', () => {
    expect(publicMessage(new CtbridgeError('CTB_TARGET_TIMEOUT', 'x', { params: { seconds: 1 } }))).toContain('within 1 second;');
    expect(publicMessage(new CtbridgeError('CTB_TARGET_TIMEOUT', 'x'))).toContain('did not answer in time;');
    expect(publicMessage(new CtbridgeError('CTB_BODY_TOO_LARGE', 'x', { params: { bytes: 1024, body: 'answer' } }))).toBe('The answer is larger than the relay passes on (1024 bytes).');
    expect(publicMessage(new CtbridgeError('CTB_BAD_REQUEST', 'x', { params: { problem: 'the path has an invalid percent-encoding.' } }))).toBe('The request is malformed: the path has an invalid percent-encoding.');
  });
});
