import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CtbridgeError } from '../../src/errors.js';
import { createLogger, flushLogger, type LoggerOptions } from '../../src/log.js';
import { duplicateTopLevelKeys } from '../helpers/processes.js';

function capture(level: LoggerOptions['level'] = 'info') {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { lines, raw, logger: createLogger({ level, name: 'relay', destination }) };
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

  it('keeps this host name and pid in every line, once', () => {
    const { lines, raw, logger } = capture();
    logger.child({ component: 'agents' }).info({ agentId: 'acme-1', agentHostname: 'site-b' }, 'agent connected');
    expect(lines[0]).toMatchObject({ hostname: hostname(), pid: process.pid, component: 'agents', agentHostname: 'site-b' });
    expect(duplicateTopLevelKeys(raw[0]!)).toEqual([]);
  });

  it('pino does not merge a repeated key: the e2e helpers catch such lines', () => {
    const { raw, logger } = capture();
    logger.child({ component: 'requests' }).child({ component: 'clienttracker' }).info({ hostname: 'other' }, 'x');
    expect(duplicateTopLevelKeys(raw[0]!)).toEqual(['component', 'hostname']);
  });

  it('flushLogger resolves', async () => {
    const { logger } = capture();
    logger.info('bye');
    await expect(flushLogger(logger)).resolves.toBeUndefined();
  });
});

describe('duplicateTopLevelKeys', () => {
  it('finds keys repeated at the top level only, reading strings with escapes', () => {
    expect(duplicateTopLevelKeys('{"a":1,"b":{"a":2,"a":3},"c":[{"a":1}],"d":"\\",\\"a\\":"}')).toEqual([]);
    expect(duplicateTopLevelKeys('{"a":1,"b":"x","a":2,"b":[1,{"b":1}]}')).toEqual(['a', 'b']);
    expect(duplicateTopLevelKeys('{"k\\u0061":1,"ka":2}')).toEqual(['ka']);
  });
});
