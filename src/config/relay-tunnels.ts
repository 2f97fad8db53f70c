/**
 * relay.yaml `tunnels.<name>:` — the relay-side policy for one tunnel: kind,
 * who may call it, which paths, limits, and Client Tracker settings.
 */
import { REGISTRATION_URL_ELEMENTS, SERVER_CALLED_URL_ELEMENTS, type RegistrationUrlElement } from '../xml/registration-elements.js';
import { parseAllowPaths, parseCidrList } from './common.js';

export { REGISTRATION_URL_ELEMENTS, type RegistrationUrlElement };
import type { Section } from './schema-check.js';
import type { CidrList } from './units.js';
import { duration, integer, oneOf, size, url } from './values.js';

export const TUNNEL_KINDS = ['http', 'clienttracker'] as const;
export type TunnelKind = (typeof TUNNEL_KINDS)[number];


export const CT_VALIDATION_MODES = ['off', 'report', 'enforce'] as const;
export type CtValidationMode = (typeof CT_VALIDATION_MODES)[number];

export interface ClientTrackerConfig {
  /** http(s) URL of the Client Tracker RPC endpoint, ending with `/`. */
  readonly rpcUrl: string;
  readonly rewrite: readonly RegistrationUrlElement[];
  readonly validation: CtValidationMode;
  /** HTTP status for bridge errors shown to Client Tracker. */
  readonly errorStatus: number;
}

export interface RelayTunnelConfig {
  readonly name: string;
  readonly kind: TunnelKind;
  /** Callers allowed; undefined = anyone. */
  readonly allowFrom: CidrList | undefined;
  /** Exact paths or prefixes ending in `/`; undefined = every path. */
  readonly allowPaths: readonly string[] | undefined;
  /** Bytes; the tunnel's override or `limits.maxRequestBody`. */
  readonly maxRequestBody: number;
  /** ms; the tunnel's overrides or the top-level `timeouts`. */
  readonly timeouts: { readonly request: number; readonly idle: number };
  /** Set exactly when `kind` is `clienttracker`. */
  readonly clientTracker: ClientTrackerConfig | undefined;
}

/** Relay-wide values a tunnel inherits unless it overrides them. */
export interface RelayTunnelDefaults {
  readonly maxRequestBody: number;
  readonly request: number;
  readonly idle: number;
}

const TUNNEL_KEYS = ['kind', 'allowFrom', 'allowPaths', 'maxRequestBody', 'timeouts', 'clientTracker'];
const CT_KEYS = ['rpcUrl', 'rewrite', 'validation', 'errorStatus'];
const DEFAULT_REWRITE = SERVER_CALLED_URL_ELEMENTS;

function parseClientTracker(s: Section): ClientTrackerConfig {
  const rewrite = s.list('rewrite', oneOf(REGISTRATION_URL_ELEMENTS), '["resourceInfoURL", "resourceTaxonomyInfoURL"]');
  return {
    rpcUrl:
      s.req('rpcUrl', url({ protocols: ['http:', 'https:'], trailingSlash: true }), 'an http:// or https:// URL ending with "/"') ?? '',
    rewrite: rewrite ? [...new Set(rewrite)] : DEFAULT_REWRITE,
    validation: s.get('validation', oneOf(CT_VALIDATION_MODES), 'report'),
    errorStatus: s.get('errorStatus', integer(100, 599), 200),
  };
}

export function parseRelayTunnel(name: string, tunnels: Section, defaults: RelayTunnelDefaults): RelayTunnelConfig {
  const s = tunnels.section(name, TUNNEL_KEYS);
  const kind = s.get('kind', oneOf(TUNNEL_KINDS), 'http');
  const timeouts = s.section('timeouts', ['request', 'idle']);
  const ct = s.section('clientTracker', CT_KEYS);
  let clientTracker: ClientTrackerConfig | undefined;
  if (kind === 'clienttracker') {
    clientTracker = parseClientTracker(ct);
  } else if (ct.present && (!s.has('kind') || s.value('kind') === kind)) {
    // (when kind itself is invalid, that is the problem to report)
    s.fail('clientTracker', 'only allowed when kind is "clienttracker"');
  }
  return {
    name,
    kind,
    allowFrom: parseCidrList(s, 'allowFrom'),
    allowPaths: parseAllowPaths(s),
    maxRequestBody: s.get('maxRequestBody', size(), defaults.maxRequestBody),
    timeouts: {
      request: timeouts.get('request', duration(), defaults.request),
      idle: timeouts.get('idle', duration(), defaults.idle),
    },
    clientTracker,
  };
}
