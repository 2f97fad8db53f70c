/**
 * deploy/kubernetes, checked offline (no cluster, no network, no kubectl):
 *
 * - every YAML file parses (several documents per file allowed);
 * - every object validates against the Kubernetes OpenAPI schemas as the
 *   kubernetes-models package compiles them, and has no field those schemas
 *   do not know (the schemas themselves allow unknown fields, so a typo such
 *   as `publishNotReadyAddress` would pass them; `kubectl apply` rejects it);
 * - the manifests agree with the relay: the ConfigMap's relay.yaml, with
 *   the Secret's variables set as the Deployment sets them, passes
 *   parseRelayConfig, and its ports, probe paths, peer DNS name, secret
 *   names, timeouts and body limit match the Deployment, Services, Ingress,
 *   NetworkPolicy and PodDisruptionBudget; the container runs the
 *   Dockerfile's entry point and user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy, type IIngress, type INetworkPolicy, type INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import {
  ConfigMap,
  Namespace,
  Secret,
  Service,
  type IConfigMap,
  type IContainer,
  type IContainerPort,
  type IEnvVar,
  type INamespace,
  type IProbe,
  type ISecret,
  type IService,
} from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { CLUSTER_SECRET_ENV, JWT_SECRET_ENV, NODE_ID_ENV } from '../../src/config/index.js';
import { parseRelayConfig } from '../../src/config/relay-config.js';
import { parseSize } from '../../src/config/units.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = join(ROOT, 'deploy/kubernetes');
const NODE_MODULES = join(ROOT, 'node_modules');
const NAMESPACE = 'ctbridge';

// ---------------------------------------------------------------- loading

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface Loaded {
  file: string;
  obj: K8sObject;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

/** Every document of every YAML file, with the YAML library's errors and warnings. */
function loadAll(): { docs: Loaded[]; problems: string[] } {
  const docs: Loaded[] = [];
  const problems: string[] = [];
  for (const path of yamlFiles(DIR)) {
    const file = relative(DIR, path);
    for (const doc of parseAllDocuments(readFileSync(path, 'utf8'), { uniqueKeys: true, prettyErrors: false })) {
      for (const e of [...doc.errors, ...doc.warnings]) problems.push(`${file}: ${e.message}`);
      const obj = doc.toJS() as unknown;
      if (obj === null || obj === undefined) continue; // an empty document (e.g. a trailing ---)
      docs.push({ file, obj: obj as K8sObject });
    }
  }
  return { docs, problems };
}

const { docs: DOCS, problems: YAML_PROBLEMS } = loadAll();
const KUSTOMIZATION_FILE = 'kustomization.yaml';
const MANIFESTS = DOCS.filter((d) => d.file !== KUSTOMIZATION_FILE);

function one<T>(kind: string, name?: string): T {
  const found = MANIFESTS.filter((d) => d.obj.kind === kind && (name === undefined || d.obj.metadata.name === name));
  expect(found.map((d) => `${d.file}: ${d.obj.kind}/${d.obj.metadata.name}`), `exactly one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0]!.obj as T;
}

// ---------------------------------------------------------------- schemas

/** How each kind is validated: the kubernetes-models class, and its type declarations (for unknown fields). */
const MODELS: Record<string, { model: new (data: never) => { validate(): void }; dts: string }> = {
  'v1/Namespace': { model: Namespace, dts: 'kubernetes-models/v1/Namespace.d.ts' },
  'v1/ConfigMap': { model: ConfigMap, dts: 'kubernetes-models/v1/ConfigMap.d.ts' },
  'v1/Secret': { model: Secret, dts: 'kubernetes-models/v1/Secret.d.ts' },
  'v1/Service': { model: Service, dts: 'kubernetes-models/v1/Service.d.ts' },
  'apps/v1/Deployment': { model: Deployment, dts: 'kubernetes-models/apps/v1/Deployment.d.ts' },
  'networking.k8s.io/v1/Ingress': { model: Ingress, dts: 'kubernetes-models/networking.k8s.io/v1/Ingress.d.ts' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, dts: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy.d.ts' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, dts: 'kubernetes-models/policy/v1/PodDisruptionBudget.d.ts' },
};

/**
 * The fields of one Kubernetes type, read from the interface kubernetes-models
 * generates from the same OpenAPI document as its schemas: property name →
 * the declaration file of the property's type, or undefined when it is a
 * leaf (string, number, enum, map, Quantity, IntOrString, Time...).
 */
type Fields = Map<string, string | undefined>;
const fieldsCache = new Map<string, Fields | undefined>();

function resolveImport(from: string, spec: string): string | undefined {
  const base = spec.startsWith('.') ? join(dirname(from), spec) : join(NODE_MODULES, spec);
  return [`${base}.d.ts`, join(base, 'index.d.ts')].find((p) => existsSync(p));
}

function fieldsOf(dts: string): Fields | undefined {
  if (fieldsCache.has(dts)) return fieldsCache.get(dts);
  const text = readFileSync(dts, 'utf8');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1]!, m[2]!);
  const body = /^export interface I\w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m.exec(text)?.[1];
  let fields: Fields | undefined;
  if (body !== undefined) {
    fields = new Map();
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
      const type = m[2]!;
      // Maps ({ [key: string]: ... }) are free-form; so is any type that is not a generated interface.
      const ref = type.startsWith('{') ? undefined : /\bIIoK8s\w+/.exec(type)?.[0];
      const spec = ref ? imports.get(ref) : undefined;
      fields.set(m[1]!, spec ? resolveImport(dts, spec) : undefined);
    }
  }
  fieldsCache.set(dts, fields);
  return fields;
}

/** Paths (a.b[0].c) of fields that the type declared in `dts` does not have. */
function unknownFields(value: unknown, dts: string, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, dts, `${path}[${i}]`));
  const fields = fieldsOf(dts);
  if (fields === undefined || typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, v]) => {
    const at = path ? `${path}.${key}` : key;
    if (!fields.has(key)) return [at];
    const child = fields.get(key);
    return child ? unknownFields(v, child, at) : [];
  });
}

function modelOf(obj: K8sObject): (typeof MODELS)[string] {
  const m = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!m) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  return m;
}

// ---------------------------------------------------------------- helpers

/** The Dockerfile's runtime stage: one entry per instruction, continuation lines joined. */
function dockerRuntime(): Map<string, string[]> {
  const stages: Map<string, string[]>[] = [];
  for (const raw of readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    const name = op!.toUpperCase();
    if (name === 'FROM') stages.push(new Map());
    const stage = stages.at(-1);
    if (!stage) continue;
    stage.set(name, [...(stage.get(name) ?? []), args!.trim()]);
  }
  return stages.at(-1)!;
}

/** The image's USER as a numeric id (the official Node.js images' `node` user is 1000). */
function numericUser(user: string): number {
  const known: Record<string, number> = { node: 1000, root: 0 };
  const name = user.split(':')[0]!;
  if (/^\d+$/.test(name)) return Number(name);
  expect(known, `uid of the Dockerfile's USER ${name}`).toHaveProperty(name);
  return known[name]!;
}

/** A port number, or a container port's name resolved to its number. */
function portNumber(port: number | string | undefined, ports: readonly IContainerPort[]): number {
  if (typeof port === 'number') return port;
  const found = ports.find((p) => p.name === port);
  expect(found, `a container port named ${port}`).toBeDefined();
  return found!.containerPort;
}

/** Kubernetes quantities: 250m, 1, 192Mi, 1Gi, 500M. */
function quantity(q: string | number | undefined): number {
  expect(q, 'a quantity').toBeDefined();
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(String(q));
  expect(m, `a quantity, got ${q}`).not.toBeNull();
  const unit = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m![2] ?? ''] ?? 1;
  return Number(m![1]) * unit;
}

/** An ingress-nginx size (proxy-body-size): bytes, or k/m/g (powers of 1024). */
function nginxSize(v: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(v);
  expect(m, `an nginx size, got ${v}`).not.toBeNull();
  return Number(m![1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf(m![2]!.toLowerCase());
}

const sameLabels = (a: Record<string, string> | undefined, b: Record<string, string> | undefined): void => {
  expect(a).toEqual(b);
};

/** Test values, at least 32 bytes each, for the Secret's placeholders. */
const TEST_SECRETS: Record<string, string> = {
  [JWT_SECRET_ENV]: 'test-jwt-secret-0123456789abcdef0123456789',
  [CLUSTER_SECRET_ENV]: 'test-cluster-secret-0123456789abcdef012345',
};
const POD_NAME = 'ctbridge-relay-7d9f8c6b5-x2k4q';

/** The environment the Deployment gives the relay, with `secrets` standing in for the Secret's values. */
function containerEnv(env: readonly IEnvVar[], secretName: string, secrets: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const e of env) {
    if (e.value !== undefined) out[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      expect(e.valueFrom.secretKeyRef.name, `${e.name} comes from the Secret`).toBe(secretName);
      out[e.name] = secrets[e.valueFrom.secretKeyRef.key];
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') out[e.name] = POD_NAME;
    else throw new Error(`env ${e.name}: a source this test does not model`);
  }
  return out;
}

// ---------------------------------------------------------------- the objects

const deployment = (): IDeployment => one<IDeployment>('Deployment');
const podSpec = () => deployment().spec!.template.spec!;
const relayContainer = (): IContainer => {
  const cs = podSpec().containers;
  expect(cs.map((c) => c.name)).toEqual(['relay']);
  return cs[0]!;
};
const configMap = (): IConfigMap => one<IConfigMap>('ConfigMap');
const secret = (): ISecret => one<ISecret>('Secret');
const services = (): IService[] => MANIFESTS.filter((d) => d.obj.kind === 'Service').map((d) => d.obj as IService);
const headlessService = (): IService => {
  const found = services().filter((s) => s.spec?.clusterIP === 'None');
  expect(found).toHaveLength(1);
  return found[0]!;
};
const publicService = (): IService => {
  const found = services().filter((s) => s.spec?.clusterIP !== 'None');
  expect(found).toHaveLength(1);
  return found[0]!;
};

/** relay.yaml from the ConfigMap, as the file the container is started with. */
function relayYaml(): { fileName: string; text: string } {
  const c = relayContainer();
  const args = [...(c.command ?? []), ...(c.args ?? [])];
  const configPath = args[args.indexOf('--config') + 1]!;
  const mount = (c.volumeMounts ?? []).find((m) => configPath.startsWith(`${m.mountPath}/`));
  expect(mount, `a volume mounted above ${configPath}`).toBeDefined();
  const volume = (podSpec().volumes ?? []).find((v) => v.name === mount!.name);
  expect(volume?.configMap?.name, 'the config volume is the ConfigMap').toBe(configMap().metadata!.name);
  const inMount = configPath.slice(mount!.mountPath.length + 1);
  const item = volume!.configMap!.items?.find((i) => i.path === inMount);
  const key = item ? item.key : inMount; // without items, each key is a file of that name
  const text = configMap().data?.[key];
  expect(text, `ConfigMap key ${key}`).toBeTypeOf('string');
  return { fileName: configPath, text: text! };
}

function relayConfig(secrets = TEST_SECRETS) {
  const { fileName, text } = relayYaml();
  const env = containerEnv(relayContainer().env ?? [], secret().metadata!.name!, secrets);
  return parseRelayConfig(parseYaml(text, { uniqueKeys: true }), fileName, env, { baseDir: dirname(fileName) });
}

// ---------------------------------------------------------------- tests

describe('deploy/kubernetes: the files', () => {
  it('parse as YAML, and every document is a Kubernetes object', () => {
    expect(YAML_PROBLEMS).toEqual([]);
    expect(MANIFESTS.length).toBeGreaterThan(0);
    for (const { file, obj } of DOCS) {
      expect(typeof obj.apiVersion, `${file}: apiVersion`).toBe('string');
      expect(typeof obj.kind, `${file}: kind`).toBe('string');
      if (file !== KUSTOMIZATION_FILE) expect(obj.metadata?.name, `${file}: metadata.name`).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('hold the pieces a relay cluster needs', () => {
    const kinds = MANIFESTS.map((d) => `${d.obj.kind}/${d.obj.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'ConfigMap/ctbridge-relay-config',
        'Deployment/ctbridge-relay',
        'Ingress/ctbridge-relay',
        'Namespace/ctbridge',
        'NetworkPolicy/ctbridge-relay',
        'PodDisruptionBudget/ctbridge-relay',
        'Secret/ctbridge-relay-secrets',
        'Service/ctbridge-relay',
        'Service/ctbridge-relay-peers',
      ].sort(),
    );
  });

  it('validate against the Kubernetes schemas (kubernetes-models)', () => {
    for (const { file, obj } of MANIFESTS) {
      const { model } = modelOf(obj);
      expect(() => new model(obj as never).validate(), `${file}: ${obj.kind}/${obj.metadata.name}`).not.toThrow();
    }
  });

  it('use no field the Kubernetes API does not know', () => {
    for (const { file, obj } of MANIFESTS) {
      expect(unknownFields(obj, join(NODE_MODULES, modelOf(obj).dts)), `${file}: ${obj.kind}/${obj.metadata.name}`).toEqual([]);
    }
  });

  it('the unknown-field check catches a misspelt field, at any depth', () => {
    const svc = structuredClone(headlessService()) as unknown as { spec: Record<string, unknown> };
    svc.spec.publishNotReadyAddress = true;
    expect(unknownFields(svc, join(NODE_MODULES, MODELS['v1/Service']!.dts))).toEqual(['spec.publishNotReadyAddress']);
    const dep = structuredClone(deployment()) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    dep.spec.template.spec.containers[0]!.readynessProbe = {};
    expect(unknownFields(dep, join(NODE_MODULES, MODELS['apps/v1/Deployment']!.dts))).toEqual(['spec.template.spec.containers[0].readynessProbe']);
    // ...and the schema validation a wrong type.
    const bad = structuredClone(deployment()) as unknown as { spec: Record<string, unknown> };
    bad.spec.replicas = '3';
    expect(() => new Deployment(bad as never).validate()).toThrow(/replicas/);
  });

  it('every namespaced object is in the ctbridge namespace, which enforces Pod Security "restricted"', () => {
    for (const { file, obj } of MANIFESTS) {
      if (obj.kind === 'Namespace') continue;
      expect(obj.metadata.namespace, `${file}: ${obj.kind}/${obj.metadata.name}`).toBe(NAMESPACE);
    }
    const ns = one<INamespace>('Namespace');
    expect(ns.metadata!.name).toBe(NAMESPACE);
    expect(ns.metadata!.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('kustomization.yaml lists every manifest but the Secret template, and names the image the Deployment uses', () => {
    const k = DOCS.find((d) => d.file === KUSTOMIZATION_FILE)!.obj as unknown as {
      apiVersion: string;
      kind: string;
      namespace: string;
      resources: string[];
      images: { name: string; newName?: string; newTag?: string }[];
    };
    expect(k.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(k.kind).toBe('Kustomization');
    expect(k.namespace).toBe(NAMESPACE);
    const files = [...new Set(MANIFESTS.map((d) => d.file))];
    // The template Secret would overwrite the real one on every `kubectl apply -k`.
    expect([...k.resources].sort()).toEqual(files.filter((f) => f !== 'secret.yaml').sort());
    const image = relayContainer().image!;
    const [name, tag] = image.split(':');
    expect(k.images.map((i) => i.name)).toEqual([name]);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(tag).toBe(version);
    expect(k.images[0]!.newTag).toBe(version);
  });
  // kubectl is not a dependency of the project; where it is installed, its
  // built-in kustomize (offline) must build what `kubectl apply -k` applies.
  const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasKubectl)('kubectl kustomize builds them, with the image and namespace set (where kubectl is installed)', () => {
    const built = parseAllDocuments(execFileSync('kubectl', ['kustomize', DIR], { encoding: 'utf8' })).map((d) => d.toJS() as K8sObject);
    const names = (objs: K8sObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names(built)).toEqual(names(MANIFESTS.filter((d) => d.file !== 'secret.yaml').map((d) => d.obj)));
    const dep = built.find((o) => o.kind === 'Deployment') as unknown as IDeployment;
    expect(dep.spec!.template.spec!.containers[0]!.image).toMatch(/^registry\.example\.com\/ctbridge\/ctbridge-relay:/);
    for (const o of built) if (o.kind !== 'Namespace') expect(o.metadata.namespace).toBe(NAMESPACE);
  });
});

describe('deploy/kubernetes agrees with the relay', () => {
  it("the ConfigMap's relay.yaml, with the Deployment's environment, is a valid relay config in cluster mode", () => {
    const config = relayConfig();
    expect(config.cluster).toBeDefined();
    expect(config.cluster!.nodeId).toBe(POD_NAME);
    expect(config.cluster!.secret).toBe(TEST_SECRETS[CLUSTER_SECRET_ENV]);
    expect(config.auth.keys.map((key) => [key.where, key.secret])).toEqual([[JWT_SECRET_ENV, TEST_SECRETS[JWT_SECRET_ENV]]]);
  });

  it('holds no secret: without the Secret the config is refused, and so it is with the template\'s placeholders', () => {
    const raw = parseYaml(relayYaml().text) as { auth?: Record<string, unknown>; cluster?: Record<string, unknown> };
    expect(Object.keys(raw.auth ?? {})).not.toContain('secret');
    expect(Object.keys(raw.auth ?? {})).not.toContain('keys');
    expect(Object.keys(raw.cluster ?? {})).not.toContain('secret');
    expect(() => relayConfig({})).toThrow(new RegExp(`${JWT_SECRET_ENV}[\\s\\S]*${CLUSTER_SECRET_ENV}|${CLUSTER_SECRET_ENV}[\\s\\S]*${JWT_SECRET_ENV}`));
    const template = secret().stringData ?? {};
    for (const v of Object.values(template)) expect(v).toMatch(/^REPLACE-ME/);
    expect(() => relayConfig(template)).toThrow(/placeholder/);
  });

  it("the Secret's keys are the relay's variables, and the Deployment takes them from it; POD_NAME is the pod's name", () => {
    const s = secret();
    expect(s.data).toBeUndefined();
    expect(Object.keys(s.stringData ?? {}).sort()).toEqual([CLUSTER_SECRET_ENV, JWT_SECRET_ENV].sort());
    const env = relayContainer().env ?? [];
    for (const name of [JWT_SECRET_ENV, CLUSTER_SECRET_ENV]) {
      const e = env.find((v) => v.name === name);
      expect(e?.valueFrom?.secretKeyRef, name).toEqual({ name: s.metadata!.name, key: name });
    }
    expect(env.find((v) => v.name === NODE_ID_ENV)?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(relayContainer().envFrom).toBeUndefined();
  });

  it('public port: relay.yaml listen = the container port = the public Service targetPort; the Ingress reaches that Service', () => {
    const config = relayConfig();
    const ports = relayContainer().ports ?? [];
    expect(config.listen.host).toBe('0.0.0.0');
    const http = ports.find((p) => p.containerPort === config.listen.port);
    expect(http?.name).toBe('http');
    const svc = publicService();
    expect(svc.spec!.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(svc.spec!.sessionAffinity ?? 'None').toBe('None');
    expect(svc.spec!.ports).toHaveLength(1);
    const sp = svc.spec!.ports![0]!;
    expect(portNumber(sp.targetPort, ports)).toBe(config.listen.port);

    const ing = one<IIngress>('Ingress');
    const backends = ing.spec!.rules!.flatMap((r) => r.http!.paths.map((p) => ({ ...p.backend.service!, path: p.path, pathType: p.pathType })));
    expect(backends.length).toBeGreaterThan(0);
    for (const b of backends) {
      expect(b.name).toBe(svc.metadata!.name);
      expect(b.port!.name ?? b.port!.number).toBe(b.port!.name ? sp.name : sp.port);
      // One Prefix / rule carries both the agents' path and /t/<tunnel>/.
      expect([b.path, b.pathType]).toEqual(['/', 'Prefix']);
    }
    expect(config.agentPath.startsWith('/')).toBe(true);
  });

  it('public URL: the Ingress serves relay.yaml publicUrl, with TLS', () => {
    const config = relayConfig();
    const url = new URL(config.publicUrl);
    const ing = one<IIngress>('Ingress');
    expect(ing.spec!.rules!.map((r) => r.host)).toContain(url.hostname);
    expect(url.protocol).toBe('https:');
    expect(ing.spec!.tls!.flatMap((t) => t.hosts ?? [])).toContain(url.hostname);
    expect(ing.spec!.tls!.every((t) => typeof t.secretName === 'string' && t.secretName.length > 0)).toBe(true);
  });

  it('Ingress: timeouts long enough for agents, bodies as large as the relay takes, no stickiness', () => {
    const config = relayConfig();
    const a = one<IIngress>('Ingress').metadata!.annotations ?? {};
    for (const key of ['proxy-read-timeout', 'proxy-send-timeout']) {
      const seconds = Number(a[`nginx.ingress.kubernetes.io/${key}`]);
      expect(seconds, key).toBeGreaterThanOrEqual(3600);
      expect(seconds * 1000, `${key} > timeouts.request`).toBeGreaterThan(config.timeouts.request);
      expect(seconds * 1000, `${key} > heartbeat.timeout`).toBeGreaterThan(config.heartbeat.timeout);
    }
    const body = nginxSize(a['nginx.ingress.kubernetes.io/proxy-body-size']!);
    expect(body).toBe(config.limits.maxRequestBody);
    for (const t of Object.values(config.tunnels)) expect(body, `tunnel ${t.name} maxRequestBody`).toBeGreaterThanOrEqual(t.maxRequestBody);
    expect(Object.keys(a).filter((k) => /affinity|upstream-hash-by|session-cookie/.test(k))).toEqual([]);
    expect(one<IIngress>('Ingress').spec!.ingressClassName).toBe('nginx');
  });

  it('with an Ingress in front, trustedProxies is not empty', () => {
    expect(relayConfig().trustedProxies.size).toBeGreaterThan(0);
  });

  it('admin port: relay.yaml admin.listen = the probes\' port; readiness is /readyz (fast), liveness /healthz', () => {
    const config = relayConfig();
    const c = relayContainer();
    const ports = c.ports ?? [];
    expect(config.admin.listen).toBeDefined();
    // The kubelet probes from the node, not from loopback.
    expect(config.admin.listen!.host).not.toMatch(/^127\.|^::1$|^localhost$/);
    expect(config.admin.allowFrom.contains('10.1.2.3')).toBe(true);
    const admin = config.admin.listen!.port;
    expect(ports.find((p) => p.containerPort === admin)?.name).toBe('admin');
    const probe = (p: IProbe | undefined, name: string): IProbe => {
      expect(p?.httpGet, `${name} is an HTTP GET`).toBeDefined();
      expect(portNumber(p!.httpGet!.port, ports), `${name} port`).toBe(admin);
      expect(p!.httpGet!.scheme ?? 'HTTP').toBe('HTTP');
      return p!;
    };
    const ready = probe(c.readinessProbe, 'readinessProbe');
    expect(ready.httpGet!.path).toBe('/readyz');
    expect(ready.periodSeconds).toBe(2);
    expect(ready.failureThreshold).toBe(1);
    expect(probe(c.livenessProbe, 'livenessProbe').httpGet!.path).toBe('/healthz');
    if (c.startupProbe) expect(probe(c.startupProbe, 'startupProbe').httpGet!.path).toBe('/healthz');
    // Probes go to the admin listener, never the public port.
    expect(admin).not.toBe(config.listen.port);
  });

  it('cluster port and peers: cluster.listen = the container port = the headless Service port; peers.dns is that Service', () => {
    const config = relayConfig();
    const cluster = config.cluster!;
    const ports = relayContainer().ports ?? [];
    expect(cluster.listen.port).not.toBe(config.listen.port);
    expect(ports.find((p) => p.containerPort === cluster.listen.port)?.name).toBe('cluster');
    const h = headlessService();
    expect(h.spec!.publishNotReadyAddresses).toBe(true);
    expect(h.spec!.ports).toHaveLength(1);
    const hp = h.spec!.ports![0]!;
    expect(hp.port).toBe(cluster.listen.port);
    expect(portNumber(hp.targetPort ?? hp.port, ports)).toBe(cluster.listen.port);
    expect(cluster.peers.port).toBe(hp.port);
    expect(cluster.peers.dns).toBe(`${h.metadata!.name}.${h.metadata!.namespace}.svc.cluster.local`);
    expect(cluster.peers.dns).toBe('ctbridge-relay-peers.ctbridge.svc.cluster.local');
  });

  it('both Services, the PodDisruptionBudget, the NetworkPolicy and the spread constraints select exactly the relay pods', () => {
    const dep = deployment();
    const labels = dep.spec!.template.metadata!.labels;
    sameLabels(dep.spec!.selector.matchLabels, labels);
    for (const s of services()) sameLabels(s.spec!.selector, labels);
    sameLabels(one<IPodDisruptionBudget>('PodDisruptionBudget').spec!.selector!.matchLabels, labels);
    sameLabels(one<INetworkPolicy>('NetworkPolicy').spec!.podSelector.matchLabels, labels);
    const spread = podSpec().topologySpreadConstraints ?? [];
    expect(spread.map((t) => t.topologyKey)).toContain('kubernetes.io/hostname');
    for (const t of spread) sameLabels(t.labelSelector?.matchLabels, labels);
  });

  it('stopping: terminationGracePeriodSeconds exceeds drain delay + shutdownGrace', () => {
    const config = relayConfig();
    const drainDelay = (config.timeouts as { drainDelay?: number }).drainDelay ?? 5000;
    const grace = podSpec().terminationGracePeriodSeconds!;
    expect(grace).toBe(45);
    expect(grace * 1000).toBeGreaterThan(config.timeouts.shutdownGrace + drainDelay);
  });

  it('rollouts and disruptions keep relays serving: 3 replicas, surge 1 / unavailable 0, PDB minAvailable 2', () => {
    const spec = deployment().spec!;
    expect(spec.replicas).toBe(3);
    expect(spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pdb = one<IPodDisruptionBudget>('PodDisruptionBudget').spec!;
    expect(pdb.maxUnavailable).toBeUndefined();
    expect(pdb.minAvailable).toBe(2);
    expect(pdb.minAvailable as number).toBeLessThan(spec.replicas!);
    expect(pdb.minAvailable as number).toBeGreaterThanOrEqual(1);
  });

  it('the container runs the Dockerfile\'s entry point with --config at the mounted ConfigMap', () => {
    const runtime = dockerRuntime();
    const entrypoint = JSON.parse(runtime.get('ENTRYPOINT')![0]!) as string[];
    const cmd = JSON.parse(runtime.get('CMD')![0]!) as string[];
    const c = relayContainer();
    // command unset keeps the ENTRYPOINT; if set, it must be the same.
    if (c.command !== undefined) expect(c.command).toEqual(entrypoint);
    expect(c.args).toEqual(cmd);
    const args = c.args!;
    expect(args[0]).toBe('relay');
    const { fileName } = relayYaml();
    expect(args[args.indexOf('--config') + 1]).toBe(fileName);
    expect(fileName).toBe('/etc/ctbridge/relay.yaml');
    // The image exposes the public port.
    expect(runtime.get('EXPOSE')!.join(' ').split(/\s+/)).toContain(String(relayConfig().listen.port));
  });

  it('runs as the Dockerfile\'s non-root user, read-only, without privileges (Pod Security "restricted")', () => {
    const uid = numericUser(dockerRuntime().get('USER')!.at(-1)!);
    expect(uid).not.toBe(0);
    const pod = podSpec().securityContext!;
    const sc = relayContainer().securityContext!;
    expect(pod.runAsNonRoot).toBe(true);
    expect(pod.runAsUser).toBe(uid);
    expect(sc.runAsNonRoot ?? pod.runAsNonRoot).toBe(true);
    expect(sc.runAsUser ?? pod.runAsUser).toBe(uid);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.privileged ?? false).toBe(false);
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    expect(sc.capabilities?.add).toBeUndefined();
    expect((sc.seccompProfile ?? pod.seccompProfile)?.type).toBe('RuntimeDefault');
    expect(podSpec().hostNetwork ?? false).toBe(false);
    expect((podSpec().volumes ?? []).filter((v) => v.hostPath)).toEqual([]);
    expect(podSpec().automountServiceAccountToken).toBe(false);
    // Everything the relay may write goes to a mounted volume.
    for (const m of relayContainer().volumeMounts ?? []) {
      const v = (podSpec().volumes ?? []).find((x) => x.name === m.name)!;
      if (v.configMap || v.secret) expect(m.readOnly, m.mountPath).toBe(true);
    }
  });

  it('resources: requests and limits for CPU and memory, requests within limits, memory above the bench peak', () => {
    const r = relayContainer().resources!;
    for (const k of ['cpu', 'memory']) {
      expect(quantity(r.requests?.[k]), `requests.${k} <= limits.${k}`).toBeLessThanOrEqual(quantity(r.limits?.[k]));
    }
    // `npm run bench` peaked at 160 MiB RSS (deployment.yaml says how it was measured).
    expect(quantity(r.requests!.memory)).toBeGreaterThanOrEqual(160 * 1024 ** 2);
    expect(quantity(r.limits!.memory)).toBeGreaterThanOrEqual(512 * 1024 ** 2);
  });

  it('NetworkPolicy: every container port has a rule; the cluster port only from relay pods', () => {
    const np = one<INetworkPolicy>('NetworkPolicy');
    const rules = np.spec!.ingress ?? [];
    const labels = deployment().spec!.template.metadata!.labels;
    const ports = relayContainer().ports ?? [];
    const rulesFor = (port: IContainerPort) =>
      rules.filter((r) => (r.ports ?? []).some((p) => portNumber(p.port, ports) === port.containerPort || p.port === port.name));
    for (const p of ports) expect(rulesFor(p).length, `a rule for ${p.name} ${p.containerPort}`).toBeGreaterThan(0);
    const clusterPeers: INetworkPolicyPeer[] = rulesFor(ports.find((p) => p.name === 'cluster')!).flatMap((r) => r.from ?? []);
    expect(clusterPeers).toEqual([{ podSelector: { matchLabels: labels } }]);
    // The public port is not open to every pod: trustedProxies believes forwarded headers from the pod network.
    expect(rulesFor(ports.find((p) => p.name === 'http')!).every((r) => (r.from ?? []).length > 0)).toBe(true);
  });

  it('the config file the relay is started with is the one the ConfigMap holds, and its size units are the relay\'s', () => {
    // A sanity check of the helpers against the relay's own parsers.
    expect(nginxSize('100m')).toBe(parseSize('100MiB'));
    expect(quantity('192Mi')).toBe(parseSize('192MiB'));
    expect(relayYaml().text).toContain('listen: 0.0.0.0:8080');
  });
});
