/**
 * Binding a listener named in a config file. When the address cannot be
 * bound (in use, no permission, not an address of this host), the failure
 * is a CtbridgeError (CTB_CONFIG_INVALID: exit code 2) that names the file,
 * the key, the address and what to do, instead of a stack trace.
 */
import type { AddressInfo, Server } from 'node:net';
import { formatHostPort, type HostPort } from './config/units.js';
import { CtbridgeError } from './errors.js';

/** The config file and key that named the address, e.g. `{ file: 'relay.yaml', key: 'listen' }`. */
export interface ListenWhere {
  readonly file: string;
  readonly key: string;
}

/** A listener that could not be bound; `systemCode` is the OS error (`EADDRINUSE`, `EACCES`, ...). */
export class ListenError extends CtbridgeError {
  readonly systemCode: string | undefined;

  constructor(message: string, hint: string | undefined, cause: NodeJS.ErrnoException) {
    super('CTB_CONFIG_INVALID', message, { hint, cause });
    this.name = 'ListenError';
    this.systemCode = typeof cause?.code === 'string' ? cause.code : undefined;
  }
}

/** Why `err` stopped a listen, in words, and what to do about it. */
export function explainListenError(err: NodeJS.ErrnoException, key: string): { why: string; hint: string | undefined } {
  switch (err.code) {
    case 'EADDRINUSE':
      return { why: 'the address is already in use', hint: `stop the other process using it or choose another port in ${key}:` };
    case 'EACCES':
    case 'EPERM':
      return {
        why: 'permission denied (ports below 1024 need privileges)',
        hint: `choose a port above 1024 in ${key}:, or give the service the CAP_NET_BIND_SERVICE capability`,
      };
    case 'EADDRNOTAVAIL':
      return {
        why: 'no network interface of this host has that address',
        hint: `use an address of this host in ${key}:, or 0.0.0.0 for every interface`,
      };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { why: 'the host name does not resolve', hint: `use an IP address or a resolvable host name in ${key}:` };
    default:
      return { why: err.message || String(err), hint: undefined };
  }
}

/**
 * `server.listen(port, host)`, resolving with the bound address once
 * listening, or rejecting with a ListenError: "relay.yaml: listen: cannot
 * listen on 127.0.0.1:8080: the address is already in use", hint "stop the
 * other process using it or choose another port in listen:". `backlog`:
 * connections the kernel holds before they are accepted (Node's default
 * 511; Linux caps it at net.core.somaxconn).
 */
export function listenOrExplain(server: Server, hostPort: HostPort, where: ListenWhere, backlog?: number): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const { why, hint } = explainListenError(err, where.key);
      reject(new ListenError(`${where.file}: ${where.key}: cannot listen on ${formatHostPort(hostPort)}: ${why}`, hint, err));
    };
    server.once('error', onError);
    server.listen({ port: hostPort.port, host: hostPort.host, ...(backlog ? { backlog } : {}) }, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * `listenOrExplain` on `hostPort`, and when that port is in use, on each of
 * `fallbackPorts` in turn (a default port that another process holds). With
 * no fallback ports, exactly listenOrExplain. When every port is in use the
 * error names them all and says to set the key.
 */
export async function listenOnFirstFree(server: Server, hostPort: HostPort, fallbackPorts: readonly number[], where: ListenWhere): Promise<AddressInfo> {
  try {
    return await listenOrExplain(server, hostPort, where);
  } catch (err) {
    if (!(err instanceof ListenError) || err.systemCode !== 'EADDRINUSE' || fallbackPorts.length === 0) throw err;
    for (const port of fallbackPorts) {
      try {
        return await listenOrExplain(server, { host: hostPort.host, port }, where);
      } catch (next) {
        if (!(next instanceof ListenError) || next.systemCode !== 'EADDRINUSE') throw next;
      }
    }
    const range = `${fallbackPorts[0]}-${fallbackPorts[fallbackPorts.length - 1]}`;
    throw new ListenError(
      `${where.file}: ${where.key} (not set): cannot listen on ${formatHostPort(hostPort)} nor on ports ${range}: all are in use`,
      `set ${where.key}: to a free address, e.g. 127.0.0.1:19091, or stop the other processes using them`,
      err.cause as NodeJS.ErrnoException,
    );
  }
}
