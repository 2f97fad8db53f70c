/**
 * A request body arriving on an exchange, as the async iterable undici
 * sends to the target. Credit goes back to the relay only when undici asks
 * for the next chunk, that is once it has written the previous one to the
 * target's socket: a slow target stalls only its own exchange.
 */
import type { CtbridgeError } from '../src/errors.js';
import type { Exchange } from '../src/mux/exchange.js';

export function requestBody(ex: Exchange): AsyncIterable<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: CtbridgeError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  ex.on('data', (chunk) => {
    queue.push(chunk);
    notify();
  });
  ex.once('end', () => {
    ended = true;
    notify();
  });
  ex.once('reset', (err) => {
    failure = err;
    notify();
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (failure) throw failure;
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          ex.consumed(chunk.length);
        } else if (ended) {
          return;
        } else {
          await new Promise<void>((resolve) => (wake = resolve));
        }
      }
    },
  };
}
