/** Config files for relay and agent: load, validate, defaults, env overrides, freeze. */
export { loadAgentConfig, loadRelayConfig, readConfigFile } from './load.js';
export {
  DEFAULT_RELAY_LISTEN,
  parseRelayConfig,
  type RelayConfig,
  type RelayLimits,
  type RelayTimeouts,
  type RelayTlsConfig,
} from './relay-config.js';
export {
  GENERATE_SECRET_HINT,
  JWT_SECRET_ENV,
  MIN_SECRET_LENGTH,
  SECRET_PLACEHOLDER_PREFIX,
  signingKeyOf,
  type RelayAuthConfig,
  type RelayAuthKey,
} from './relay-auth.js';
export {
  CT_VALIDATION_MODES,
  REGISTRATION_URL_ELEMENTS,
  TUNNEL_KINDS,
  type ClientTrackerConfig,
  type CtValidationMode,
  type RegistrationUrlElement,
  type RelayTunnelConfig,
  type TunnelKind,
} from './relay-tunnels.js';
export {
  AGENT_TOKEN_ENV,
  parseAgentConfig,
  type AgentConfig,
  type AgentEgressConfig,
  type AgentProxyConfig,
  type ProxyAuthConfig,
  type TrustSource,
  type AgentTimeouts,
  type AgentTunnelConfig,
  type HostHeaderPolicy,
} from './agent-config.js';
export { CLUSTER_PREVIOUS_SECRET_ENV, CLUSTER_SECRET_ENV, DEFAULT_CLUSTER_PORT, NODE_ID_ENV, clusterSecrets, isNodeId, type ClusterConfig, type ClusterPeers, type ClusterTlsConfig } from './relay-cluster.js';
export {
  ADMIN_FALLBACK_PORTS,
  DEFAULT_ADMIN_PORT,
  defaultAdminPorts,
  DEFAULT_AGENT_PATH,
  LOG_LEVELS,
  STREAM_WINDOW,
  type AdminConfig,
  type HeartbeatConfig,
  type LogConfig,
  type LogLevel,
  type ParseConfigOptions,
} from './common.js';
export type { LoadedPublicKey, LoadedText } from './files.js';
export { describeAgentConfig, describeRelayConfig } from './describe.js';
export {
  CidrList,
  MAX_CONFIG_DURATION_MS,
  MAX_TIMER_MS,
  ValueError,
  formatDuration,
  formatHostPort,
  formatSize,
  parseCidr,
  parseDuration,
  parseHostPort,
  parseSize,
  type Cidr,
  type HostPort,
} from './units.js';
export { INSPECT_DEFAULTS, type InspectConfig } from './inspect.js';
