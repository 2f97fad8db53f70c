/**
 * The HAProxy configuration in front of relay nodes, as docs/cluster.md
 * shows it: round robin, health checks on each node's admin /readyz, retries
 * of failed connections on another node. Pure, so that the cluster bench
 * (bench/cluster.ts) uses the same configuration as the e2e test.
 */

export interface LbServer {
  name: string;
  port: number;
  adminPort: number;
}

export function haproxyConfig(port: number, servers: readonly LbServer[]): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  timeout http-keep-alive 5s',
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    'frontend public',
    `  bind 127.0.0.1:${port}`,
    '  default_backend relays',
    'backend relays',
    '  balance roundrobin',
    '  option httpchk',
    '  http-check send meth GET uri /readyz',
    // Quick to take a draining node out (one failed check), but a check may
    // take up to 2 s: without `timeout check` the whole check must finish
    // within `inter`, and under load on two cores two nodes' /readyz could
    // both miss 250 ms, leaving HAProxy no server (its own 503).
    '  timeout check 2s',
    '  default-server inter 250ms fall 1 rise 2',
    ...servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port} check port ${s.adminPort}`),
    '',
  ].join('\n');
}
