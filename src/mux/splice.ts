/**
 * Two exchanges joined into one: an exchange that arrived (from a peer
 * relay node) and the one opened onward for it (to an agent). Heads, body
 * bytes and ends pass both ways, each direction under the credit of the
 * exchange it is sent on, so a slow end stalls only this pair; a reset on
 * either side resets the other with the same error.
 */
import type { Exchange } from './exchange.js';

/** Body bytes from `from` to `to`: credit goes back to `from` as `to` takes them. */
function pipeBody(from: Exchange, to: Exchange): void {
  let owed = 0;
  from.on('data', (chunk) => {
    if (to.send(chunk) && owed === 0) from.consumed(chunk.length);
    else owed += chunk.length;
  });
  to.on('drain', () => {
    if (owed === 0) return;
    from.consumed(owed);
    owed = 0;
  });
  from.once('end', () => to.end());
}

export function splice(inbound: Exchange, outbound: Exchange): void {
  pipeBody(inbound, outbound);
  outbound.once('response', (head) => inbound.respond(head));
  pipeBody(outbound, inbound);
  inbound.once('reset', (err) => outbound.reset(err));
  outbound.once('reset', (err) => inbound.reset(err));
}
