/**
 * What an e2e test starts besides ctbridge processes (a backend, a forward
 * or fault proxy, a PAC server) is closed after it:
 *
 *   const closeAfter = cleanUpAfterEach();
 *   const backend = closeAfter(await startBackend());
 *
 * registers one afterEach that kills the test's processes first (stopAll,
 * which also checks their log lines), then closes, newest first, what the
 * test passed to `closeAfter`.
 */
import { afterEach } from 'vitest';
import { stopAll } from './processes.js';

export interface Closable {
  close(): unknown;
}

export function cleanUpAfterEach(): <T extends Closable>(thing: T) => T {
  const started: Closable[] = [];
  afterEach(async () => {
    try {
      await stopAll();
    } finally {
      for (const thing of started.splice(0).reverse()) await thing.close();
    }
  });
  return (thing) => {
    started.push(thing);
    return thing;
  };
}
