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

/**
 * `onSocketGone`: the error the exchange is reset with when the socket
 * closes abruptly. A socket that ended its side first (a WebSocket's normal
 * close: the close handshake, then FIN) is a clean end: the exchange waits
 * for the other side's END, and what still arrives has nowhere to go.
 */
export function pipeSocket(ex: Exchange, socket: Duplex, onSocketGone: () => CtbridgeError): void {
  let socketEnded = false;
  let gone = false;
  socket.on('data', (chunk: Buffer) => {
    if (!ex.send(chunk)) socket.pause();
  });
  ex.on('drain', () => socket.resume());
  socket.once('end', () => {
    socketEnded = true;
    ex.end();
  });
  socket.on('error', () => undefined); // 'close' follows
  let owed = 0;
  socket.once('close', () => {
    gone = true;
    if (ex.closed) return;
    if (!socketEnded) ex.reset(onSocketGone());
    else if (owed > 0) {
      // Bytes the socket will never take: let the other side finish.
      ex.consumed(owed);
      owed = 0;
    }
  });
  ex.on('data', (chunk) => {
    if (gone) ex.consumed(chunk.length);
    else if (socket.write(chunk) && owed === 0) ex.consumed(chunk.length);
    else owed += chunk.length;
  });
  socket.on('drain', () => {
    ex.consumed(owed);
    owed = 0;
  });
  ex.once('end', () => socket.end());
  ex.once('reset', () => socket.destroy());
}
