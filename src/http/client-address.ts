/**
 * A caller's address as ctbridge compares and logs it: IPv4 callers on
 * dual-stack listeners (`::ffff:1.2.3.4`) look the same as on IPv4 ones.
 * The one definition of client-address normalising.
 */

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else as it is. */
export function normalizeIp(ip: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip;
}

/** The normalised address of a connection's peer ('' when the socket is gone). */
export function peerAddress(socket: { remoteAddress?: string | undefined }): string {
  return normalizeIp(socket.remoteAddress ?? '');
}
