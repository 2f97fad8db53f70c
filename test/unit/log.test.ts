import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../src/errors.js';
import { createLogger, flushLogger, type LoggerOptions } from '../../src/log.js';

function capture(level: LoggerOptions['level'] = 'info') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger({ level, name: 'relay', destination }) };
}

describe('createLogger', () => {
  it('writes JSON lines with name, level and time', () => {
    const { lines, logger } = capture();
    logger.info({ tunnel: 'cioc' }, 'agent connected');
    logger.debug('hidden at info');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ name: 'relay', level: 30, tunnel: 'cioc', msg: 'agent connected' });
    expect(typeof lines[0].time).toBe('string');
  });

  it('redacts authorization headers and token-like fields', () => {
    const { lines, logger } = capture();
    logger.info({
      req: { headers: { authorization: 'Bearer abc', cookie: 'sid=1', 'x-uctoken': 'u', host: 'relay' } },
      headers: { 'proxy-authorization': 'Basic p', 'set-cookie': ['a=1'] },
      token: 'eyJhbGciOi.x.y',
      secret: 's',
      password: 'p',
      agent: { token: 't', id: 'acme-1', authorization: 'a' },
    }, 'request');
    const out = JSON.stringify(lines[0]);
    for (const leaked of ['Bearer abc', 'sid=1', '"u"', 'Basic p', 'a=1', 'eyJhbGciOi', '"s"', '"p"', '"t"', '"a"']) {
      expect(out).not.toContain(leaked);
    }
    expect(lines[0]).toMatchObject({
      req: { headers: { authorization: '[REDACTED]', cookie: '[REDACTED]', 'x-uctoken': '[REDACTED]', host: 'relay' } },
      headers: { 'proxy-authorization': '[REDACTED]', 'set-cookie': '[REDACTED]' },
      token: '[REDACTED]',
      agent: { token: '[REDACTED]', id: 'acme-1', authorization: '[REDACTED]' },
    });
  });

  it('serializes CtbridgeError as code, message and hint, without stack', () => {
    const { lines, logger } = capture();
    logger.error({ err: new CtbridgeError('CTB_TOKEN_INVALID', 'agent token expired', { hint: 'issue a new token' }) }, 'agent rejected');
    expect(lines[0].err).toEqual({ code: 'CTB_TOKEN_INVALID', message: 'agent token expired', hint: 'issue a new token' });
  });

  it('serializes other errors as message and code; stack only at debug', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:80'), { code: 'ECONNREFUSED', secretThing: 'x' });
    const info = capture('info');
    info.logger.warn({ err }, 'target down');
    expect(info.lines[0].err).toEqual({ message: 'connect ECONNREFUSED 10.0.0.1:80', code: 'ECONNREFUSED' });
    const debug = capture('debug');
    debug.logger.warn({ err: new Error('boom') }, 'x');
    expect(debug.lines[0].err).toMatchObject({ message: 'boom', stack: expect.stringContaining('log.test.ts') });
  });

  it('flushLogger resolves', async () => {
    const { logger } = capture();
    logger.info('bye');
    await expect(flushLogger(logger)).resolves.toBeUndefined();
  });
});
