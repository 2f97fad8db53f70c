/**
 * Node links trust nothing on the wire (issue 12): real relay processes and
 * raw WebSocket / TCP peers on loopback.
 *
 * - an impostor listening at a peer address, without the secret, gets only
 *   the hello: no proof, no token, no caller's request;
 * - a genuine handshake captured on one connection and replayed on another
 *   is refused, from an allowed address and from one outside the peers;
 * - a node link from an address outside cluster.peers is refused;
 * - a peer's node id and tunnel names are checked, and long lists capped in logs;
 * - reload: a new secret re-links (rotation with previousSecret) and the old
 *   one stops working; a new cluster.listen is refused, naming the key;
 * - mutual TLS between nodes works, and a client without a certificate is refused.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import { parse, stringify } from 'yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { linkProof, newNonce, verifyLinkProofs } from '../../relay/cluster/node-auth.js';
import { encodeJson, FrameType } from '../../src/mux/frame.js';
import { PEER_PATH, PEER_SUBPROTOCOL } from '../../relay/cluster/peer-protocol.js';
import { startBackend, type Backend } from '../helpers/backend.js';
import { makeCerts } from '../helpers/certs.js';
import { freePorts } from '../helpers/ports.js';
import { runToEnd, stopAll, type CtbridgeProcess, type LogLine } from '../helpers/processes.js';
import { rawNodeDialer, rawNodeListener, type RawNodeConnection } from '../helpers/raw-node.js';
import { startAgentProcess, startRelayProcess, tokenFor, type RelayInfo } from '../helpers/tunnel.js';

const SECRET = 'cluster-secret-0123456789abcdef-0123456789';
const NEW_SECRET = 'rotated-secret-0123456789abcdef-0123456789';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  await stopAll();
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(stopAll);

function node(nodeId: string, clusterPort: number, peers: string[], extra: Record<string, unknown> = {}, tunnels: Record<string, unknown> = { ucws: {} }): Promise<RelayInfo> {
  return startRelayProcess({
    cluster: { nodeId, listen: `127.0.0.1:${clusterPort}`, secret: SECRET, peers: { static: peers, refresh: '1s' }, ...extra },
    tunnels,
  });
}

/** The first log line matching, written after this call (not one already seen). */
function nextLog(proc: CtbridgeProcess, match: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
  const from = proc.lines.length;
  return proc.waitForLog((l) => proc.lines.indexOf(l) >= from && match(l), timeoutMs);
}

/** Rewrites a relay's config file (a change to `cluster:` merged in) and runs `ctbridge reload` against it. */
async function reloadWith(relay: RelayInfo, cluster: Record<string, unknown>) {
  const config = parse(readFileSync(relay.configFile, 'utf8')) as { cluster: Record<string, unknown> };
  config.cluster = { ...config.cluster, ...cluster };
  for (const [k, v] of Object.entries(config.cluster)) if (v === undefined) delete config.cluster[k];
  writeFileSync(relay.configFile, stringify(config));
  const r = await runToEnd(['reload', '--admin', relay.adminUrl]);
  return { ...r, output: r.stdout + r.stderr };
}

/** Plays a genuine dialing node that holds `secret`; resolves with what the real listener did. */
async function dialWithSecret(port: number, secret: string, nodeId = 'raw-dialer'): Promise<{ conn: RawNodeConnection; linked: boolean; close?: [number, string] }> {
  const conn = await rawNodeDialer(port);
  const dialerNonce = newNonce();
  conn.send({ type: 'node-hello', nodeId, nonce: dialerNonce });
  const challenge = await conn.next('node-challenge');
  const t = { dialerNonce, listenerNonce: String(challenge.nonce), dialerId: nodeId, listenerId: String(challenge.nodeId) };
  conn.send({ type: 'node-proof', proofs: [linkProof(secret, 'dialer', t)] });
  const outcome = await Promise.race([conn.next('node').then(() => 'linked' as const), conn.closed]);
  if (outcome === 'linked') return { conn, linked: true };
  return { conn, linked: false, close: outcome };
}

describe('node links: mutual proof, no replay, address check', () => {
  it('an impostor at a peer address that cannot prove the secret gets the hello only: no proof, no token, no request', async () => {
    const [impostorPort, clusterPort] = await freePorts(2);
    const impostor = await rawNodeListener(impostorPort, (c) => {
      void c.next('node-hello').then(() => {
        // What the attack on the bearer-token version did: claim to be a node and announce the tunnel.
        c.send({ type: 'node-challenge', nodeId: 'impostor', nonce: newNonce(), proofs: [newNonce()] });
        c.send({ type: 'node', nodeId: 'impostor', tunnels: ['ucws'], draining: false });
      });
    });
    cleanups.push(impostor.close);
    const relay = await node('node-1', clusterPort, [`127.0.0.1:${impostorPort}`]);
    const refusal = (l: LogLine) => l.msg === `peer node link closed: the node at 127.0.0.1:${impostorPort} did not prove the cluster secret; nothing is sent to it (check cluster.secret and cluster.peers)`;
    await relay.proc.waitForLog(refusal);
    // It dials again (it may be a node during a secret rotation): the same again.
    await nextLog(relay.proc, refusal);

    const answer = await fetch(`${relay.url}/t/ucws/account`, { headers: { authorization: 'Bearer caller-secret', cookie: 'session=caller-cookie' } });
    expect(answer.status).toBe(502);
    expect(answer.headers.get('x-ctbridge-error')).toBe('CTB_AGENT_NOT_CONNECTED');
    expect(await answer.text()).not.toContain('impostor');

    // The relay keeps redialling: judge the first two links, each once the relay has closed it (a later dial may be
    // in flight, its hello not yet sent).
    expect(impostor.connections.length).toBeGreaterThanOrEqual(2);
    const judged = impostor.connections.slice(0, 2);
    await Promise.all(judged.map((c) => c.closed));
    for (const c of judged) {
      expect(c.headers.authorization).toBeUndefined();
      expect(c.headers.cookie).toBeUndefined();
      expect(c.controls.map((m) => m.type)).toEqual(['node-hello']);
      expect(c.otherFrames).toEqual([]);
      expect(JSON.stringify(c.controls)).not.toMatch(/caller-secret|caller-cookie|proof/);
    }
    // Regression (review): the impostor proved nothing; the close reason it hears names no config key and no address.
    const [closeCode, closeReason] = await impostor.connections[0].closed;
    expect([closeCode, closeReason]).toEqual([4401, 'the listening node did not prove the cluster secret']);
    const status = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { cluster: { peers: { state: string; tunnels: string[]; lastProblem: string }[] } };
    expect(status.cluster.peers).toEqual([expect.objectContaining({ state: 'connecting', tunnels: [], lastProblem: expect.stringContaining('did not prove the cluster secret') })]);
  });

  it('a genuine handshake captured on one connection and replayed on another is refused', async () => {
    const [c1, c2, proxyPort] = await freePorts(3);
    // node-1 takes links from 127.0.0.1 and 127.0.0.2 (nothing listens at the second: only its address matters here).
    const node1 = await node('node-1', c1, [`127.0.0.1:${c2}`, `127.0.0.2:${c2}`]);
    // node-2 reaches node-1 through a TCP proxy that records what node-2 sends.
    const captured: Buffer[] = [];
    let first = true;
    const proxy: Server = createServer((client: Socket) => {
      const record = first;
      first = false;
      const upstream = connect(c1, '127.0.0.1');
      client.on('data', (d: Buffer) => {
        if (record) captured.push(Buffer.from(d));
        upstream.write(d);
      });
      upstream.pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    proxy.listen(proxyPort, '127.0.0.1');
    await once(proxy, 'listening');
    cleanups.push(() => new Promise<void>((resolve) => { proxy.close(() => resolve()); }));
    const node2 = await node('node-2', c2, [`127.0.0.1:${proxyPort}`]);
    await node1.proc.waitForLog((l) => l.msg === 'peer node linked' && l.nodeId === 'node-2');
    await node2.proc.waitForLog((l) => l.msg === 'peer node connected' && l.nodeId === 'node-1');
    const handshake = Buffer.concat(captured);
    expect(handshake.toString('latin1')).toContain(`GET ${PEER_PATH}`);
    expect(handshake.toString('latin1')).not.toMatch(/authorization/i);

    for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
      const refused = nextLog(node1.proc, (l) => l.msg === 'cluster listener refused a node: the dialing node did not prove the cluster secret (check cluster.secret on both nodes)' && l.remote === localAddress);
      const socket = connect({ port: c1, host: '127.0.0.1', localAddress });
      socket.on('error', () => undefined);
      // A WebSocket close frame with code 4401 (0x1131) and the reason.
      const closeFrame = Buffer.from([0x11, 0x31, ...Buffer.from('the dialing node did not prove')]);
      let bytes = Buffer.alloc(0);
      const closedByNode = new Promise<void>((resolve) => socket.on('data', (d: Buffer) => {
        bytes = Buffer.concat([bytes, d]);
        if (bytes.includes(closeFrame)) resolve();
      }));
      socket.write(handshake);
      await closedByNode;
      await refused;
      socket.destroy();
      expect(bytes.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      expect(bytes.toString('latin1')).not.toContain('cluster.');
    }
    expect(node1.proc.countLogs('peer node linked')).toBe(1);
  });

  it('a node link from an address outside cluster.peers is refused before the WebSocket opens', async () => {
    const [c1, other] = await freePorts(2);
    const relay = await node('node-1', c1, [`127.0.0.1:${other}`]);
    const logged = nextLog(relay.proc, (l) => String(l.msg).startsWith('cluster listener refused a connection: its address is not one of cluster.peers') && l.remote === '127.0.0.3');
    const err = await rawNodeDialer(c1, '127.0.0.3').then(() => undefined, (e: { status?: number; body?: string }) => e);
    expect(err?.status).toBe(403);
    // Regression (review): a caller outside the peers hears the code, the public sentence and a request id, not cluster.peers.
    const body = JSON.parse(err!.body!) as { error: { requestId: string } };
    expect(body).toEqual({ error: { details: 'CTB_NODE_REFUSED', _type: 'CtbridgeError', code: 'CTB_NODE_REFUSED', message: 'This relay node does not accept the connection.', requestId: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    expect(err!.body).not.toMatch(/cluster\.|acceptAnyAddress|127\.0\.0/);
    expect(await logged).toMatchObject({ requestId: body.error.requestId });
    // From a peer address the handshake goes on (and needs the secret).
    const ok = await dialWithSecret(c1, SECRET);
    expect(ok.linked).toBe(true);
    ok.conn.ws.close();
  });

  it('a real node dialing a node whose peers do not list its address is refused, and says why; a reload adding it links them, dropping it unlinks them', async () => {
    const [c1, c2] = await freePorts(2);
    // node-1 takes links only from 127.0.0.9; node-2 dials it from 127.0.0.1.
    const node1 = await node('node-1', c1, ['127.0.0.9:7946']);
    const node2 = await node('node-2', c2, [`127.0.0.1:${c1}`]);
    const refused = await node2.proc.waitForLog((l) => l.msg === 'peer node refused the link before it opened');
    // node-2 hears the code, the sentence and the request id; node-1's line with that id says why.
    const requestId = /^CTB_NODE_REFUSED: This relay node does not accept the connection\. \(request id ([0-9a-f]{16})\)$/.exec(String(refused.reason))?.[1];
    expect(requestId, String(refused.reason)).toBeDefined();
    expect(refused).toMatchObject({ peer: `127.0.0.1:${c1}`, status: 403 });
    await node1.proc.waitForLog((l) => String(l.msg).startsWith('cluster listener refused a connection: its address is not one of cluster.peers') && l.remote === '127.0.0.1' && l.requestId === requestId);
    const status = await (await fetch(`${node2.adminUrl}/api/status`)).json() as { cluster: { peers: { state: string; lastProblem: string }[] } };
    expect(status.cluster.peers).toEqual([expect.objectContaining({ state: 'connecting', lastProblem: expect.stringMatching(/^refused with HTTP 403: CTB_NODE_REFUSED: .*\(request id [0-9a-f]{16}\)$/) })]);
    expect(node1.proc.countLogs('peer node linked')).toBe(0);

    // A reload that lists node-2 takes effect at once: node-1 takes node-2's link and dials it.
    const linkedIn = nextLog(node1.proc, (l) => l.msg === 'peer node linked' && l.nodeId === 'node-2');
    const linkedOut = nextLog(node1.proc, (l) => l.msg === 'peer node connected' && l.nodeId === 'node-2');
    const reloaded = await reloadWith(node1, { peers: { static: [`127.0.0.1:${c2}`], refresh: '1s' } });
    expect(reloaded.code).toBe(0);
    expect(reloaded.output).toContain('cluster.peers');
    await Promise.all([linkedIn, linkedOut]);

    // And a reload that drops it closes the link it holds from node-2.
    const cut = nextLog(node1.proc, (l) => l.msg === 'node link closed: its address is no longer one of cluster.peers' && l.remote === '127.0.0.1');
    const dropped = await reloadWith(node1, { peers: { static: ['127.0.0.9:7946'], refresh: '1s' } });
    expect(dropped.output).toMatch(/[1-9]\d* node link\(s\) from addresses no longer in cluster\.peers closed/);
    await cut;
  });

  it('an exchange opened before the proof is refused and closes the link', async () => {
    const [c1, other] = await freePorts(2);
    const relay = await node('node-1', c1, [`127.0.0.1:${other}`]);
    const conn = await rawNodeDialer(c1);
    conn.send({ type: 'node-hello', nodeId: 'early', nonce: newNonce() });
    await conn.next('node-challenge');
    conn.ws.send(Buffer.concat(encodeJson(FrameType.OPEN, 1, 1, { kind: 'http', tunnel: 'ucws', method: 'GET', target: '/', headers: [], requestId: 'r1' })));
    const [code, reason] = await conn.closed;
    expect(code).toBe(4401);
    expect(reason).toBe('opened an exchange before proving the cluster secret');
    await relay.proc.waitForLog((l) => l.msg === 'cluster listener refused a node: opened an exchange before proving the cluster secret' && l.remote === '127.0.0.1');
  });
});

describe('what a peer node may announce', () => {
  it('a bad node id or tunnel name closes the link with a clean reason; 3,000 names are capped in the log', async () => {
    const [fakePort, c1] = await freePorts(2);
    const announcements: (() => { nodeId: string; tunnels: unknown })[] = [
      () => ({ nodeId: 'evil\u001b[31m\u202eid', tunnels: [] }),
      () => ({ nodeId: 'fake', tunnels: ['ok', '<b>x</b>'] }),
      () => ({ nodeId: 'fake', tunnels: Array.from({ length: 3000 }, (_, i) => `t${i}`) }),
    ];
    let n = 0;
    // A listener that holds the secret and proves it, then announces what the list says.
    const fake = await rawNodeListener(fakePort, (c) => {
      const say = announcements[Math.min(n++, announcements.length - 1)]();
      void c.next('node-hello').then(async (hello) => {
        const t = { dialerNonce: String(hello.nonce), listenerNonce: newNonce(), dialerId: String(hello.nodeId), listenerId: say.nodeId };
        c.send({ type: 'node-challenge', nodeId: say.nodeId, nonce: t.listenerNonce, proofs: [linkProof(SECRET, 'listener', t)] });
        const proof = await c.next('node-proof');
        if (!verifyLinkProofs(proof.proofs, [SECRET], 'dialer', t)) return c.ws.close(4401, 'bad proof');
        c.send({ type: 'node', nodeId: say.nodeId, tunnels: say.tunnels, draining: false });
      });
    });
    cleanups.push(fake.close);
    const relay = await node('node-1', c1, [`127.0.0.1:${fakePort}`]);

    const badId = await relay.proc.waitForLog((l) => String(l.msg).startsWith('peer node link closed: malformed node-challenge: node id'));
    expect(JSON.stringify(badId)).not.toMatch(/\\u001b|\u001b|\u202e/);
    expect(badId.reason).toContain('\ufffd');
    const html = await relay.proc.waitForLog((l) => String(l.msg).startsWith('peer node link closed: malformed node message'));
    expect(html.reason).toBe("malformed node message: announced '<b>x</b>', which is not a tunnel name (1-63 lower-case letters, digits, \"-\")");
    const connected = await relay.proc.waitForLog((l) => l.msg === 'peer node connected' && l.nodeId === 'fake', 30_000);
    expect(connected.tunnelCount).toBe(3000);
    expect(connected.tunnels).toHaveLength(21);
    expect(JSON.stringify(connected).length).toBeLessThan(2000);
    // Only the valid announcement counts: the HTML name never became a tunnel.
    const status = await (await fetch(`${relay.adminUrl}/api/status`)).json() as { cluster: { peers: { nodeId: string; tunnels: string[] }[] } };
    expect(status.cluster.peers[0].tunnels).toHaveLength(3000);
    expect(status.cluster.peers[0].tunnels).not.toContain('<b>x</b>');
    expect(fake.connections.every((c) => c.otherFrames.length === 0)).toBe(true);
  });
});

describe('reload of the cluster section', () => {
  it('a new secret re-links every node link (rotation with previousSecret); the old secret then fails; a new cluster.listen is refused', async () => {
    const [c1, c2, c3] = await freePorts(3);
    const node1 = await node('node-1', c1, [`127.0.0.1:${c2}`]);
    const node2 = await node('node-2', c2, [`127.0.0.1:${c1}`]);
    const linked = (id: string) => (l: LogLine) => l.msg === 'peer node connected' && l.nodeId === id;
    await node1.proc.waitForLog(linked('node-2'));
    await node2.proc.waitForLog(linked('node-1'));

    // Step 1, node-1: the new secret, the old one still accepted. Both ends of both links link again.
    let relinked = [nextLog(node1.proc, linked('node-2')), nextLog(node2.proc, linked('node-1'))];
    const r1 = await reloadWith(node1, { secret: NEW_SECRET, previousSecret: SECRET });
    expect(r1.code).toBe(0);
    expect(r1.output).toContain('cluster secret: node links re-established');
    await node1.proc.waitForLog('cluster secret changed: linking to every node again with the new secret');
    await Promise.all(relinked);

    // Step 2, node-2: only the new secret.
    relinked = [nextLog(node1.proc, linked('node-2')), nextLog(node2.proc, linked('node-1'))];
    expect((await reloadWith(node2, { secret: NEW_SECRET })).code).toBe(0);
    await Promise.all(relinked);

    // Step 3, node-1: the old secret dropped.
    relinked = [nextLog(node1.proc, linked('node-2')), nextLog(node2.proc, linked('node-1'))];
    expect((await reloadWith(node1, { previousSecret: undefined })).code).toBe(0);
    await Promise.all(relinked);

    // The old secret proves nothing any more, on either node.
    for (const port of [c1, c2]) {
      const old = await dialWithSecret(port, SECRET);
      expect(old.linked).toBe(false);
      expect(old.close?.[0]).toBe(4401);
    }
    expect((await dialWithSecret(c1, NEW_SECRET)).linked).toBe(true);

    // A new listen address cannot be applied live: refused, naming the key; nothing of the file applies.
    const refused = await reloadWith(node1, { listen: `127.0.0.1:${c3}`, secret: SECRET });
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain(`cluster.listen changed (127.0.0.1:${c1} → 127.0.0.1:${c3}): restart the relay to apply it`);
    await node1.proc.waitForLog((l) => String(l.msg).startsWith('reload refused: cluster.listen changed'));
    expect((await dialWithSecret(c1, NEW_SECRET)).linked).toBe(true);
  });
});

describe('TLS between nodes', () => {
  let backend: Backend | undefined;
  afterAll(async () => backend?.close());

  it('mutual TLS: nodes link and forward; a client without a certificate is refused', async () => {
    const certs = makeCerts();
    backend = await startBackend();
    const [c1, c2] = await freePorts(2);
    const tlsConfig = { cert: certs.cert, key: certs.key, ca: certs.ca };
    const node1 = await node('node-1', c1, [`127.0.0.1:${c2}`], { tls: tlsConfig }, { web: {} });
    const node2 = await node('node-2', c2, [`127.0.0.1:${c1}`], { tls: tlsConfig }, { web: {} });
    const listening = await node1.proc.waitForLog('cluster listening');
    expect(listening.tls).toBe('mutual');
    await startAgentProcess({ relayUrl: node1.url, token: await tokenFor(['web'], 'agent-1'), tunnels: { web: { target: backend.url } } });
    // node-2 forwards once node-1 announced the agent's tunnel to it.
    for (let i = 0; ; i++) {
      const status = await (await fetch(`${node2.adminUrl}/api/status`)).json() as { cluster: { peers: { nodeId: string; tunnels: string[] }[] } };
      if (status.cluster.peers.some((p) => p.nodeId === 'node-1' && p.tunnels.includes('web'))) break;
      if (i === 300) throw new Error('node-2 never learned that node-1 serves tunnel web');
      await new Promise((r) => setTimeout(r, 50));
    }
    const answer = await fetch(`${node2.url}/t/web/over-tls`);
    expect(answer.status).toBe(200);
    await node1.proc.waitForLog((l) => l.msg === 'forwarded request' && l.fromNode === 'node-2');

    // A TLS client without a client certificate gets no further than the TLS handshake.
    const logged = nextLog(node1.proc, (l) => String(l.msg).startsWith('cluster listener refused a connection: TLS handshake failed') && l.remote === '127.0.0.1');
    const socket = tls.connect({ port: c1, host: '127.0.0.1', ca: readFileSync(certs.ca), servername: 'localhost' });
    socket.on('error', () => undefined);
    socket.on('secureConnect', () => socket.write(`GET ${PEER_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${PEER_SUBPROTOCOL}\r\n\r\n`));
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    await new Promise((resolve) => socket.once('close', resolve));
    await logged;
    expect(Buffer.concat(got).toString('latin1')).not.toContain('101');
  });
});
