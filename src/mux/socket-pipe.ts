/**
 * An exchange and a socket as one raw byte pipe both ways: what a WebSocket
 * upgrade becomes after its 101, on the relay (caller's socket) and on the
 * agent (target's socket). Each side's pace sets the other's: bytes from
 * the socket go out under the exchange's credit (the socket pauses without
 * it); bytes from the exchange are granted credit as the socket takes them.
 */
import type { Duplex } from 'node:stream';
import type { CtbridgeError } from '../errors.js';
import type { Exchange } from './exchange.js';

/** `onSocketGone`: the error the exchange is reset with when the socket closes before both directions ended. */
export function pipeSocket(ex: Exchange, socket: Duplex, onSocketGone: () => CtbridgeError): void {
  socket.on('data', (chunk: Buffer) => {
    if (!ex.send(chunk)) socket.pause();
  });
  ex.on('drain', () => socket.resume());
  socket.once('end', () => ex.end());
  socket.on('error', () => undefined); // 'close' follows
  socket.once('close', () => {
    if (!ex.closed) ex.reset(onSocketGone());
  });
  let owed = 0;
  ex.on('data', (chunk) => {
    if (socket.write(chunk) && owed === 0) ex.consumed(chunk.length);
    else owed += chunk.length;
  });
  socket.on('drain', () => {
    ex.consumed(owed);
    owed = 0;
  });
  ex.once('end', () => socket.end());
  ex.once('reset', () => socket.destroy());
}
