import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ListenError, explainListenError, listenOrExplain } from '../../src/listen.js';

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
