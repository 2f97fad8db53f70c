/**
 * Waiting for a socket the agent opened (to the relay, to a forward proxy)
 * to connect, bounded by an AbortSignal: one helper for every such wait,
 * which takes every listener it added off the socket again, whatever the
 * outcome, so a socket handed on carries nothing of the wait.
 */
import type net from 'node:net';

/**
 * Resolves with `socket` once it emits `ready` ('connect', or
 * 'secureConnect' for TLS). Rejects with its 'error', when it closes first,
 * or with `signal.reason` when `signal` aborts first (the socket is then
 * destroyed, without an 'error' event nobody listens to any more).
 */
export function whenConnected<S extends net.Socket>(socket: S, ready: 'connect' | 'secureConnect', signal: AbortSignal): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    const settle = (err?: unknown): void => {
      socket.off(ready, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(socket);
      else reject(err);
    };
    const onReady = (): void => settle();
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(signal.reason ?? new Error('the connection closed before it was established'));
    const onAbort = (): void => {
      settle(signal.reason);
      socket.destroy();
    };
    if (signal.aborted) return onAbort();
    socket.once(ready, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
