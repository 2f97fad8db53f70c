/**
 * Read a YAML config file and hand it to the relay or agent parser. Read and
 * syntax errors are one `ConfigError` naming the file (and line/column);
 * validation problems come together as `ConfigErrors`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseAgentConfig, type AgentConfig } from './agent-config.js';
import { osReason } from './files.js';
import { parseRelayConfig, type RelayConfig } from './relay-config.js';

/** Read and parse one YAML document. Empty files read as null. */
export function readConfigFile(file: string): unknown {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read the config file (${osReason(err)})`);
  }
  const lineCounter = new LineCounter();
  // prettyErrors off: its code excerpt could show a secret from the offending line.
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    const message =
      first.code === 'MULTIPLE_DOCS' ? 'a config file holds one YAML document; remove the "---" separator' : first.message;
    throw new ConfigError(file, '', `YAML syntax error at line ${line}, column ${col}: ${message}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(file, '', `YAML error: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Load relay.yaml: read, validate, apply defaults and CTBRIDGE_JWT_SECRET, freeze. */
export function loadRelayConfig(file: string, env: NodeJS.ProcessEnv = process.env): RelayConfig {
  return parseRelayConfig(readConfigFile(file), file, env);
}

/** Load agent.yaml: read, validate, apply defaults and CTBRIDGE_AGENT_TOKEN, freeze. */
export function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return parseAgentConfig(readConfigFile(file), file, env);
}
