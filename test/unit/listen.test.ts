import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenError, explainListenError, listenOnFirstFree, listenOrExplain } from '../../src/listen.js';
import { freePorts } from '../helpers/ports.js';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});
const server = () => {
  const s = http.createServer();
  servers.push(s);
  return s;
};

describe('listenOrExplain', () => {
  it('resolves with the bound address', async () => {
    const addr = await listenOrExplain(server(), { host: '127.0.0.1', port: 0 }, { file: 'relay.yaml', key: 'listen' });
    expect(addr.address).toBe('127.0.0.1');
    expect(addr.port).toBeGreaterThan(0);
  });

  it('names file, key and address when the port is in use, with a hint and no stack in the message', async () => {
    const { port } = await listenOrExplain(server(), { host: '127.0.0.1', port: 0 }, { file: 'a.yaml', key: 'listen' });
    const err = await listenOrExplain(server(), { host: '127.0.0.1', port }, { file: '/etc/ctbridge/relay.yaml', key: 'listen' })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ListenError);
    const le = err as ListenError;
    expect(le.code).toBe('CTB_CONFIG_INVALID');
    expect(le.systemCode).toBe('EADDRINUSE');
    expect(le.message).toBe(`/etc/ctbridge/relay.yaml: listen: cannot listen on 127.0.0.1:${port}: the address is already in use`);
    expect(le.userMessage).toBe(`${le.message}. stop the other process using it or choose another port in listen:`);
  });

  it('explains permission and address problems', () => {
    expect(explainListenError(Object.assign(new Error('x'), { code: 'EACCES' }), 'listen')).toEqual({
      why: 'permission denied (ports below 1024 need privileges)',
      hint: 'choose a port above 1024 in listen:, or give the service the CAP_NET_BIND_SERVICE capability',
    });
    expect(explainListenError(Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }), 'egress.listen').hint).toBe(
      'use an address of this host in egress.listen:, or 0.0.0.0 for every interface',
    );
    expect(explainListenError(Object.assign(new Error('something odd'), { code: 'EWHATEVER' }), 'listen')).toEqual({ why: 'something odd', hint: undefined });
  });

  it('names an address that is not on this host', async () => {
    // 192.0.2.1 (TEST-NET-1) is assigned to no interface of a test machine.
    const err = await listenOrExplain(server(), { host: '192.0.2.1', port: 0 }, { file: 'relay.yaml', key: 'listen' }).then(() => undefined, (e: unknown) => e);
    expect((err as ListenError).message).toBe('relay.yaml: listen: cannot listen on 192.0.2.1:0: no network interface of this host has that address');
  });
});

describe('listenOnFirstFree (admin.listen not set: the default port, else a fallback port)', () => {
  const where = { file: 'agent.yaml', key: 'admin.listen' };
  /** Holds `port` on 127.0.0.1, as another process would. */
  const hold = (port: number) => listenOrExplain(server(), { host: '127.0.0.1', port }, where);

  it('takes the first port when it is free', async () => {
    const [a, b] = await freePorts(2);
    expect((await listenOnFirstFree(server(), { host: '127.0.0.1', port: a }, [b], where)).port).toBe(a);
  });

  it('takes the first free fallback port when the others are in use', async () => {
    const [a, b, c] = await freePorts(3);
    await hold(a);
    await hold(b);
    expect((await listenOnFirstFree(server(), { host: '127.0.0.1', port: a }, [b, c], where)).port).toBe(c);
  });

  it('all in use: one error naming the default port and the fallback range, with what to do', async () => {
    const [a, b, c] = await freePorts(3);
    await Promise.all([a, b, c].map(hold));
    const err = (await listenOnFirstFree(server(), { host: '127.0.0.1', port: a }, [b, c], where).catch((e: unknown) => e)) as ListenError;
    expect(err).toBeInstanceOf(ListenError);
    expect(err.systemCode).toBe('EADDRINUSE');
    expect(err.message).toBe(`agent.yaml: admin.listen (not set): cannot listen on 127.0.0.1:${a} nor on ports ${b}-${c}: all are in use`);
    expect(err.userMessage).toContain('set admin.listen: to a free address');
  });

  it('no fallback ports (admin.listen set): the port in use fails with the usual message', async () => {
    const [a] = await freePorts(1);
    await hold(a);
    const err = (await listenOnFirstFree(server(), { host: '127.0.0.1', port: a }, [], where).catch((e: unknown) => e)) as ListenError;
    expect(err.message).toBe(`agent.yaml: admin.listen: cannot listen on 127.0.0.1:${a}: the address is already in use`);
  });
});
