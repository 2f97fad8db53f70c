/**
 * Leaving a relay without losing a request, the two steps that touch the
 * link (relay-connection.ts orders them, with the exchanges' finish in
 * between): a drain tells the relay to open no more exchanges here and
 * waits for its `drained` (everything it opened before is already here);
 * a close says goodbye with code 1000 and drops the link if the relay does
 * not answer in time. The relay's side: relay/agent-endpoint.ts.
 */
import { WebSocket } from 'ws';
import type { MuxSession } from '../src/mux/session.js';
import { CloseCode, type DrainMessage } from '../src/protocol.js';

/** Where the relay's `drained` is announced (the connection's own 'drained' event). */
export interface DrainedSignal {
  once(event: 'drained', listener: () => void): unknown;
  off(event: 'drained', listener: () => void): unknown;
}

/**
 * Sends drain on `session`; resolves once the relay has confirmed, the
 * link is gone, or `ms` passed. Also before `ready` has arrived: the relay
 * may already have sent exchanges behind it.
 */
export function drainSession(session: MuxSession | null, reason: string, ms: number, drained: DrainedSignal): Promise<void> {
  if (!session?.isOpen) return Promise.resolve();
  const message: DrainMessage = { type: 'drain', reason };
  session.sendControl(message);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      drained.off('drained', done);
      session.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    drained.once('drained', done);
    session.once('close', done);
  });
}

/** Closes the link with code 1000 (a link still dialling: dropped); terminates it if the relay does not answer within `ms`. */
export async function closeLink(ws: WebSocket | null, session: MuxSession | null, reason: string, ms: number): Promise<void> {
  if (!ws || ws.readyState === WebSocket.CLOSED) return;
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const timer = setTimeout(() => ws.terminate(), Math.max(ms, 0));
  if (session) session.close(CloseCode.NORMAL, reason);
  else ws.terminate();
  await closed;
  clearTimeout(timer);
}
