import { describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../../src/errors.js';
import { fromWire, toWire } from '../../../src/mux/wire-error.js';

/** What crosses the WebSocket: JSON text. */
function overTheWire(err: CtbridgeError): CtbridgeError {
  return fromWire(JSON.parse(JSON.stringify(toWire(err))), 'the agent');
}

describe('toWire / fromWire', () => {
  it('round-trips code, message, hint and params', () => {
    const err = new CtbridgeError('CTB_BODY_TOO_LARGE', 'the request body is larger than 1024 bytes', {
      hint: 'raise limits.maxRequestBody',
      params: { bytes: 1024, body: 'request' },
    });
    const back = overTheWire(err);
    expect(back).toBeInstanceOf(CtbridgeError);
    expect(back).toMatchObject({ code: 'CTB_BODY_TOO_LARGE', message: err.message, hint: err.hint, params: { bytes: 1024, body: 'request' } });
    expect(back.status).toBe(413);
  });

  it('round-trips every param field', () => {
    const params = { seconds: 2.5, bytes: 0, body: 'answer' as const, ctOrigin: 'https://ct.example:8443', problem: 'connection refused' };
    expect(overTheWire(new CtbridgeError('CTB_CT_UNREACHABLE', 'x', { params })).params).toEqual(params);
  });

  it('leaves out hint and params when there are none', () => {
    const wire = toWire(new CtbridgeError('CTB_CANCELLED', 'gone'));
    expect(wire).toEqual({ code: 'CTB_CANCELLED', message: 'gone' });
    const back = fromWire(wire, 'the relay');
    expect(back.hint).toBeUndefined();
    expect(back.params).toEqual({});
  });

  it('caps the message and hint it sends at 1000 characters', () => {
    const wire = toWire(new CtbridgeError('CTB_PROTOCOL', 'm'.repeat(5000), { hint: 'h'.repeat(5000) }));
    expect(wire.message).toHaveLength(1000);
    expect(wire.hint).toHaveLength(1000);
  });

  it('never carries the cause', () => {
    const wire = toWire(new CtbridgeError('CTB_TARGET_UNREACHABLE', 'refused', { cause: Object.assign(new Error('secret stack'), { password: 'pw' }) }));
    expect(JSON.stringify(wire)).not.toContain('secret');
    expect(JSON.stringify(wire)).not.toContain('pw');
  });
});

describe('fromWire checks what the peer sent', () => {
  it('turns an unknown code into CTB_PROTOCOL naming the code and keeping the message', () => {
    const e = fromWire({ code: 'CTB_FROM_THE_FUTURE', message: 'new failure' }, 'the agent');
    expect(e.code).toBe('CTB_PROTOCOL');
    expect(e.message).toBe('the agent reset the exchange with an unknown error code CTB_FROM_THE_FUTURE: new failure');
    expect(fromWire({ code: 'ECONNREFUSED' }, 'the relay').message).toBe('the relay reset the exchange with an unknown error code ECONNREFUSED');
  });

  it('shows the type of a code that is not a string, and cleans one that is', () => {
    expect(fromWire({ code: 42, message: 'm' }, 'the agent').message).toBe('the agent reset the exchange with an unknown error code number: m');
    expect(fromWire({ message: 'm' }, 'the agent').message).toBe('the agent reset the exchange with an unknown error code undefined: m');
    const e = fromWire({ code: `X\r\nforged: line${'y'.repeat(100)}` }, 'the agent');
    expect(e.message).not.toMatch(/[\r\n]/);
    expect(e.message).toBe(`the agent reset the exchange with an unknown error code X  forged: line${'y'.repeat(100)}`.slice(0, 'the agent reset the exchange with an unknown error code '.length + 40));
  });

  it('does not take inherited properties as codes', () => {
    expect(fromWire({ code: 'toString', message: 'm' }, 'the agent').code).toBe('CTB_PROTOCOL');
    expect(fromWire({ code: '__proto__', message: 'm' }, 'the agent').code).toBe('CTB_PROTOCOL');
  });

  it('turns a RESET payload that is not an object into CTB_PROTOCOL', () => {
    for (const v of [null, undefined, 'CTB_CANCELLED', 7]) {
      const e = fromWire(v, 'the relay');
      expect(e.code).toBe('CTB_PROTOCOL');
      expect(e.message).toBe('the relay reset the exchange with a malformed error');
    }
  });

  it('drops negative, non-finite and non-number counts', () => {
    for (const bad of [-1, -0.001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '30', null, true, { n: 1 }]) {
      const e = fromWire({ code: 'CTB_TARGET_TIMEOUT', message: 'm', params: { seconds: bad, bytes: bad } }, 'the agent');
      expect(e.params, String(bad)).toEqual({});
    }
    expect(fromWire({ code: 'CTB_TARGET_TIMEOUT', message: 'm', params: { seconds: 0, bytes: 1e15 } }, 'x').params).toEqual({ seconds: 0, bytes: 1e15 });
  });

  it("keeps only 'request' or 'answer' as whose body", () => {
    expect(fromWire({ code: 'CTB_BODY_TOO_LARGE', message: 'm', params: { body: 'answer' } }, 'x').params).toEqual({ body: 'answer' });
    expect(fromWire({ code: 'CTB_BODY_TOO_LARGE', message: 'm', params: { body: 'everything' } }, 'x').params).toEqual({});
  });

  it('caps param strings at 300 characters and replaces control characters', () => {
    const e = fromWire({
      code: 'CTB_CT_UNREACHABLE',
      message: 'm',
      params: { ctOrigin: `https://ct.example\n{"level":60,"msg":"forged"}`, problem: `a\u0000b\u001bc\u007fd${'p'.repeat(400)}` },
    }, 'the relay');
    expect(e.params.ctOrigin).toBe('https://ct.example {"level":60,"msg":"forged"}');
    expect(e.params.problem).toHaveLength(300);
    expect(e.params.problem?.startsWith('a b c d')).toBe(true);
    expect(fromWire({ code: 'CTB_CT_UNREACHABLE', message: 'm', params: { problem: 5, ctOrigin: ['x'] } }, 'x').params).toEqual({});
  });

  it('drops params it does not know, and params that are not an object', () => {
    expect(fromWire({ code: 'CTB_PROTOCOL', message: 'm', params: { token: 'secret', seconds: 1 } }, 'x').params).toEqual({ seconds: 1 });
    for (const params of [null, 'seconds=1', 12]) expect(fromWire({ code: 'CTB_PROTOCOL', message: 'm', params }, 'x').params).toEqual({});
  });

  it('caps message and hint at 1000 characters and replaces their control characters', () => {
    const e = fromWire({ code: 'CTB_TARGET_UNREACHABLE', message: `line1\r\nline2${'m'.repeat(2000)}`, hint: `h\tint${'h'.repeat(2000)}` }, 'the agent');
    expect(e.message).toHaveLength(1000);
    expect(e.message.startsWith('line1  line2')).toBe(true);
    expect(e.hint).toHaveLength(1000);
    expect(e.hint?.startsWith('h int')).toBe(true);
  });

  it('takes a missing or non-string message as empty, and a non-string hint as none', () => {
    const e = fromWire({ code: 'CTB_CANCELLED', message: 12, hint: { x: 1 } }, 'the agent');
    expect(e).toMatchObject({ code: 'CTB_CANCELLED', message: '', hint: undefined });
  });
});
