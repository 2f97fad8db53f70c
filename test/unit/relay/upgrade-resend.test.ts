/**
 * A WebSocket upgrade whose agent link drops before the target's 101 is
 * re-sent to the other agent of the tunnel (relay/public-upgrades.ts with
 * relay/resend.ts); after the 101 it never is: the connection is cut.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Admission } from '../../../relay/admission.js';
import { PublicUpgrades } from '../../../relay/public-upgrades.js';
import type { Exchange } from '../../../src/mux/exchange.js';
import { twoAgentsForWeb } from '../../helpers/two-agents.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Two agents for tunnel `web`: `held` never answers until told, `live` answers every upgrade with 101 and echoes. */
async function twoAgents() {
  const { config, lines, log, registry, heldPair, livePair, close } = await twoAgentsForWeb();
  const atHeld: Exchange[] = [];
  heldPair.agent.on('exchange', (ex) => atHeld.push(ex));
  livePair.agent.on('exchange', (ex) => {
    ex.respond({ status: 101, headers: ['Upgrade', 'websocket', 'Connection', 'Upgrade'] });
    ex.on('data', (c) => {
      ex.send(c);
      ex.consumed(c.length);
    });
  });
  const server = http.createServer((_req, res) => res.end());
  const upgrades = new PublicUpgrades(server, new Admission({ config }, registry, false), log);
  server.on('upgrade', upgrades.handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  cleanups.push(async () => {
    upgrades.closeAll();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await close();
  });
  /** A raw upgrade request; resolves with the first bytes of the answer (or '' when the connection closed without any). */
  const upgrade = (): { socket: net.Socket; answer: Promise<string> } => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /t/web/sock HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
      socket.once('close', () => resolve(text));
    });
    cleanups.push(async () => void socket.destroy());
    return { socket, answer };
  };
  /** Upgrades until one waits at the held agent (round robin sends every other one there). */
  const holdOne = async (): Promise<{ socket: net.Socket; answer: Promise<string> }> => {
    for (let i = 0; i < 4; i++) {
      const arrived = once(heldPair.agent, 'exchange').then(() => 'held');
      const u = upgrade();
      if ((await Promise.race([arrived, u.answer.then(() => 'answered')])) === 'held') return u;
    }
    throw new Error('no upgrade reached the held agent');
  };
  return { lines, holdOne, atHeld, dropHeld: () => heldPair.agentSocket.terminate() };
}

describe('WebSocket upgrades and a dropped agent link', () => {
  it('re-sends an upgrade still waiting for its 101 to the other agent', async () => {
    const { lines, holdOne, dropHeld } = await twoAgents();
    const { socket, answer } = await holdOne();
    dropHeld();
    expect(await answer).toMatch(/^HTTP\/1\.1 101 /);
    // The pipe works through the agent that took it.
    socket.write('ping');
    const [echoed] = (await once(socket, 'data')) as [Buffer];
    expect(echoed.toString()).toBe('ping');
    expect(lines.filter((l) => l.msg === 'request re-sent to another agent')).toEqual([
      expect.objectContaining({ method: 'GET', reason: 'agent_disconnected', fromAgentId: 'held', toAgentId: 'live', resends: 1 }),
    ]);
  });

  it('cuts an upgraded connection whose agent link drops after the 101, never re-sending it', async () => {
    const { lines, holdOne, atHeld, dropHeld } = await twoAgents();
    const { socket, answer } = await holdOne();
    atHeld[0].respond({ status: 101, headers: ['Upgrade', 'websocket', 'Connection', 'Upgrade'] });
    expect(await answer).toMatch(/^HTTP\/1\.1 101 /);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    dropHeld();
    await closed;
    expect(lines.some((l) => l.msg === 'request re-sent to another agent')).toBe(false);
  });
});
