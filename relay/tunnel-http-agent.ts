/**
 * An http.Agent whose connections are tunnel streams: Node's HTTP client (and
 * so http-proxy-3) speaks HTTP/1.1 over a stream exactly as over a socket,
 * with keep-alive pooling, chunked bodies and upgrades. Each new connection
 * goes to the agent the registry picks at that moment.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { CtbridgeError } from '../src/errors.js';
import type { StreamMeta } from '../src/protocol.js';
import type { AgentRegistry, ConnectedAgent } from './agent-registry.js';

/** Idle pooled streams are dropped after this, well before the agent's keep-alive timeout (75 s). */
const FREE_STREAM_TIMEOUT = 30_000;

export class TunnelHttpAgent extends http.Agent {
  private readonly owners = new WeakMap<Duplex, ConnectedAgent>();
  private readonly idle = new WeakSet<Duplex>();

  constructor(
    private readonly registry: AgentRegistry,
    readonly tunnel: string,
  ) {
    super({ keepAlive: true, maxFreeSockets: 256, timeout: FREE_STREAM_TIMEOUT, scheduling: 'lifo' });
  }

  override createConnection(_options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
    const picked = this.registry.pick(this.tunnel);
    if (!('agent' in picked)) {
      const err =
        'busy' in picked
          ? new CtbridgeError('CTB_AGENT_BUSY', `every agent for tunnel '${this.tunnel}' is at its concurrent-stream limit`)
          : new CtbridgeError('CTB_AGENT_NOT_CONNECTED', `no agent for tunnel '${this.tunnel}' is connected to the relay`);
      callback?.(err, undefined as never);
      return undefined;
    }
    const meta: StreamMeta = { kind: 'http', tunnel: this.tunnel };
    const owner = picked.agent;
    const stream = owner.session.openStream({ ...meta });
    this.owners.set(stream, owner);
    stream.once('close', () => {
      if (this.idle.delete(stream)) owner.idleStreams--;
    });
    callback?.(null, stream);
    return stream;
  }

  // Idle pooled streams do not count against an agent's stream limit.

  // @types/node says void; Node's Agent returns whether it keeps the socket.
  override keepSocketAlive(socket: Duplex & net.Socket): void {
    const keep = (super.keepSocketAlive(socket) as unknown) !== false;
    const owner = this.owners.get(socket);
    if (keep && owner && !this.idle.has(socket)) {
      this.idle.add(socket);
      owner.idleStreams++;
    }
    return keep as unknown as void;
  }

  override reuseSocket(socket: Duplex & net.Socket, request: http.ClientRequest): void {
    const owner = this.owners.get(socket);
    if (owner && this.idle.delete(socket)) owner.idleStreams--;
    super.reuseSocket(socket, request);
  }
}
