/**
 * The root certificates the agent trusts for the relay (and an https://
 * proxy): Node's bundled roots and/or the operating system's store
 * (`trust:`), plus the `ca:` file. The system store comes from
 * tls.getCACertificates('system') (Node >= 22.15 / 23.5, so the single
 * executables, built on Node 24, have it on Windows too); on older Node on
 * Linux from the distribution's CA bundle file; elsewhere it is unavailable,
 * which the start-up log line says.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { AgentConfig } from '../src/config/index.js';

/** Where Linux distributions keep the system CA bundle (Debian/Ubuntu, RHEL/Fedora, openSUSE, Alpine). */
export const LINUX_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/ssl/cert.pem'];

export interface Trust {
  /** For the TLS `ca` option; undefined = Node's defaults (bundled roots only). */
  ca: string[] | undefined;
  /** What is trusted, for the start-up log line: e.g. "system (tls.getCACertificates, 140 certificates)". */
  sources: string[];
  /** Why a configured source is missing, if one is. */
  warning: string | undefined;
  /** trust: names system, but the store cannot be read here: why (for the certificate hint). */
  systemUnreadable?: string;
}

type GetCA = (type: 'system' | 'bundled' | 'default' | 'extra') => string[];

export interface SystemStore {
  certs: string[];
  from: string;
}

/** The operating system's root certificates, or a reason why they cannot be read. */
export function systemStore(
  /** null: as on a Node without tls.getCACertificates. */
  getCA: GetCA | null = (tls as unknown as { getCACertificates?: GetCA }).getCACertificates ?? null,
  platform: NodeJS.Platform = process.platform,
  read: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): SystemStore | { reason: string } {
  if (getCA) {
    try {
      // The same root can sit in several places of a store (Linux: the bundle file and the hashed directory).
      return { certs: [...new Set(getCA('system'))], from: 'tls.getCACertificates' };
    } catch (err) {
      return { reason: `tls.getCACertificates('system') failed: ${(err as Error).message}` };
    }
  }
  if (platform === 'linux') {
    for (const file of LINUX_BUNDLES) {
      let text: string;
      try {
        text = read(file);
      } catch {
        continue;
      }
      const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      if (certs.length) return { certs, from: file };
    }
    return { reason: `no system CA bundle found (looked for ${LINUX_BUNDLES.join(', ')})` };
  }
  return {
    reason: `Node ${process.version} cannot read the ${platform === 'win32' ? 'Windows' : platform} certificate store (it needs Node 22.15 or later; the single executable has it)`,
  };
}

export function relayTrust(config: Pick<AgentConfig, 'trust' | 'ca'>, store: () => SystemStore | { reason: string } = systemStore): Trust {
  const sources: string[] = [];
  const ca: string[] = [];
  let warning: string | undefined;
  let systemUnreadable: string | undefined;
  if (config.trust.includes('bundled')) {
    ca.push(...tls.rootCertificates);
    sources.push(`bundled (Node's ${tls.rootCertificates.length} roots)`);
  }
  if (config.trust.includes('system')) {
    const sys = store();
    if ('certs' in sys) {
      ca.push(...sys.certs);
      sources.push(`system (${sys.from}, ${sys.certs.length} certificates)`);
    } else {
      systemUnreadable = sys.reason;
      warning = `the system certificate store is not trusted: ${sys.reason}; add your proxy's or relay's CA with ca: in agent.yaml`;
    }
  }
  if (config.ca) {
    ca.push(config.ca.text);
    sources.push(`ca: ${config.ca.file}`);
  }
  // Only Node's roots: leave Node its defaults.
  const onlyBundled = sources.length === 1 && sources[0].startsWith('bundled');
  return { ca: onlyBundled ? undefined : ca, sources, warning, ...(systemUnreadable ? { systemUnreadable } : {}) };
}
