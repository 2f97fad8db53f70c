/**
 * An http.Agent whose connections are tunnel streams: Node's HTTP client (and
 * so http-proxy-3) speaks HTTP/1.1 over a stream exactly as over a socket,
 * with keep-alive pooling, chunked bodies and upgrades. Each new connection
 * goes to the agent the registry picks at that moment.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { CtbridgeError } from '../src/errors.js';
import type { StreamMeta } from '../src/protocol.js';
import type { AgentRegistry } from './agent-registry.js';

/** Idle pooled streams are dropped after this, well before the agent's keep-alive timeout (75 s). */
const FREE_STREAM_TIMEOUT = 30_000;

export class TunnelHttpAgent extends http.Agent {
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
    const stream = picked.agent.session.openStream({ ...meta });
    callback?.(null, stream);
    return stream;
  }
}
