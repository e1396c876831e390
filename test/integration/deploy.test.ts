// The deployment manifests, docker-compose.yml and deploy/k8s/, checked against the real CLI:
// every Tributary container runs a command that `tributary --help` lists, sets only variables
// that `tributary config` knows, runs on Kafka and is health-checked on GET /status. Nothing is
// started (there is no Docker or Kubernetes here): the files are parsed and cross-checked.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { BIN, ROOT } from '../helpers/broker';

const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const K8S_DIR = join(ROOT, 'deploy', 'k8s');
/** Where every Tributary process serves GET /status (dashboard.listeners.http.bind). */
const STATUS_PORT = 18083;

// ---------------------------------------------------------------------------------------------
// What the CLI says

/** Runs `tributary <args>` without any TRIBUTARY_* variable of this environment. */
function cli(args: string[]): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRIBUTARY_')));
  try {
    return execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 30_000 });
  } catch (err) {
    throw new Error(`tributary ${args.join(' ')} failed (did the build run?): ${(err as Error).message}`);
  }
}

/** The command names of `tributary --help`'s "Commands:" section ("help, --help" gives both). */
function helpCommands(): Set<string> {
  const help = cli(['--help']);
  const lines = help.split('\n');
  const start = lines.findIndex((l) => /^Commands:\s*$/.test(l));
  assert.ok(start >= 0, `tributary --help has no "Commands:" section:\n${help}`);
  const section: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s+\S/.test(line)) break; // a blank or unindented line ends the section
    section.push(line);
  }
  const indentOf = (l: string): number => l.length - l.trimStart().length;
  const indent = Math.min(...section.map(indentOf));
  const names = new Set<string>();
  // Lines indented further continue the description of the command above.
  for (const line of section.filter((l) => indentOf(l) === indent)) {
    for (const name of line.trim().split(/\s{2,}/)[0]!.split(/,\s*/)) names.add(name);
  }
  assert.ok(names.size > 0, `no command found in tributary --help:\n${help}`);
  return names;
}

/** Every environment variable `tributary config` prints (one per configuration key). */
function configVariables(): Set<string> {
  const out = cli(['config']);
  const vars = new Set([...out.matchAll(/^\s+(TRIBUTARY_[A-Z0-9_]+)\s*$/gm)].map((m) => m[1]!));
  assert.ok(vars.has('TRIBUTARY_NODE__NAME'), `tributary config lists no TRIBUTARY_NODE__NAME:\n${out}`);
  // Not a key but documented (README): the configuration file to read.
  vars.add('TRIBUTARY_CONFIG_FILE');
  return vars;
}

const COMMANDS = helpCommands();
const KNOWN_VARS = configVariables();

/** Fails naming every variable that is not a configuration key. */
function assertKnownVariables(where: string, names: Iterable<string>): void {
  const unknown = [...names].filter((n) => n.startsWith('TRIBUTARY_') && !KNOWN_VARS.has(n));
  assert.deepEqual(unknown, [], `${where} sets TRIBUTARY_ variables that \`tributary config\` does not list: ${unknown.join(', ')}`);
}

function assertCommand(where: string, command: string | undefined): void {
  assert.ok(command, `${where} names no tributary command (it would run the image's default)`);
  assert.ok(COMMANDS.has(command), `${where} runs \`tributary ${command}\`, but \`tributary --help\` lists only: ${[...COMMANDS].join(', ')}`);
}

/** Is this image reference the Tributary image (tributary, tributary:tag, registry/x/tributary:tag)? */
function isTributaryImage(image: unknown): boolean {
  return typeof image === 'string' && image.split('/').pop()!.split(/[:@]/)[0] === 'tributary';
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: (string | number | { published?: string | number })[];
}

function loadCompose(): Record<string, ComposeService> {
  // merge: compose files may use `<<:` merge keys (YAML 1.1), which docker compose supports.
  const doc = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services?: Record<string, ComposeService> };
  assert.ok(doc?.services, 'docker-compose.yml has no services');
  return doc.services;
}

function composeEnv(s: ComposeService): Map<string, string> {
  const env = new Map<string, string>();
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const eq = entry.indexOf('=');
      env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
    }
  } else {
    for (const [k, v] of Object.entries(s.environment ?? {})) env.set(k, v === null ? '' : String(v));
  }
  return env;
}

function composeCommand(s: ComposeService): string | undefined {
  const words = typeof s.command === 'string' ? s.command.trim().split(/\s+/) : s.command;
  return words?.[0];
}

/** A service of the Tributary image: built from this repository, or using an image named tributary. */
function isTributaryService(s: ComposeService): boolean {
  const context = typeof s.build === 'string' ? s.build : s.build?.context;
  return context === '.' || context === './' || isTributaryImage(s.image);
}

describe('docker-compose.yml', () => {
  const services = loadCompose();
  const tributary = Object.entries(services).filter(([, s]) => isTributaryService(s));

  test('has Kafka, PostgreSQL, a router, a retain service and at least two gateways', () => {
    for (const name of ['kafka', 'postgres', 'router', 'retain']) assert.ok(services[name], `no service "${name}" (services: ${Object.keys(services).join(', ')})`);
    assert.match(services.kafka!.image ?? '', /^apache\/kafka:/, 'kafka does not use the apache/kafka image');
    assert.match(services.postgres!.image ?? '', /^postgres:/, 'postgres does not use the postgres image');
    assert.equal(composeCommand(services.router!), 'router', 'the router service does not run `tributary router`');
    assert.equal(composeCommand(services.retain!), 'retain', 'the retain service does not run `tributary retain`');
    const gateways = tributary.filter(([, s]) => composeCommand(s) === 'gateway').map(([n]) => n);
    assert.ok(gateways.length >= 2, `need at least two gateway services, found: ${gateways.join(', ') || 'none'}`);
  });

  test('Kafka and PostgreSQL have health checks', () => {
    assert.match(String(services.kafka?.healthcheck?.test ?? ''), /kafka-broker-api-versions/, 'kafka has no broker health check');
    assert.match(String(services.postgres?.healthcheck?.test ?? ''), /pg_isready/, 'postgres has no pg_isready health check');
  });

  test('every Tributary service runs a command that `tributary --help` lists', () => {
    assert.ok(tributary.length > 0, 'no service uses the Tributary image (build: . or image: tributary)');
    for (const [name, s] of tributary) assertCommand(`compose service ${name}`, composeCommand(s));
  });

  test('every Tributary service is health-checked on /status, runs on Kafka and waits for it to be healthy', () => {
    for (const [name, s] of tributary) {
      const hc = s.healthcheck;
      assert.ok(hc?.test && !hc.disable, `compose service ${name} has no health check`);
      const probe = Array.isArray(hc.test) ? hc.test.join(' ') : hc.test;
      assert.ok(probe.includes('/status') && probe.includes(String(STATUS_PORT)), `compose service ${name}: the health check does not GET /status on ${STATUS_PORT}: ${probe}`);
      const deps = s.depends_on;
      assert.ok(deps && !Array.isArray(deps) && deps.kafka?.condition === 'service_healthy', `compose service ${name} does not depend on kafka with condition: service_healthy`);
      const env = composeEnv(s);
      assert.equal(env.get('TRIBUTARY_BACKBONE__TYPE'), 'kafka', `compose service ${name} does not set TRIBUTARY_BACKBONE__TYPE=kafka`);
      const brokers = env.get('TRIBUTARY_BACKBONE__KAFKA__BROKERS') ?? '';
      for (const broker of brokers.split(',')) {
        assert.ok(services[broker.split(':')[0]!.trim()], `compose service ${name}: Kafka broker "${broker}" is not a compose service`);
      }
    }
  });

  test('node names are set and distinct', () => {
    const names = tributary.map(([name, s]) => [name, composeEnv(s).get('TRIBUTARY_NODE__NAME')] as const);
    for (const [name, node] of names) assert.ok(node, `compose service ${name} sets no TRIBUTARY_NODE__NAME`);
    const seen = new Map<string, string>();
    for (const [name, node] of names) {
      assert.ok(!seen.has(node!), `compose services ${seen.get(node!)} and ${name} share the node name ${node}`);
      seen.set(node!, name);
    }
  });

  test('no two services publish the same host port', () => {
    const owner = new Map<string, string>();
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        // "1884:1883", "127.0.0.1:1884:1883", 1883, or the long form { published, target }
        const published = typeof p === 'object' ? String(p.published ?? '') : String(p).split(':').slice(-2, -1)[0] ?? String(p);
        if (!published) continue;
        assert.ok(!owner.has(published), `host port ${published} is published by both ${owner.get(published)} and ${name}`);
        owner.set(published, name);
      }
    }
  });

  test('every TRIBUTARY_ variable is a configuration key', () => {
    for (const [name, s] of Object.entries(services)) assertKnownVariables(`compose service ${name}`, composeEnv(s).keys());
  });
});

// ---------------------------------------------------------------------------------------------
// deploy/k8s

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath?: string } };
}
interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    clusterIP?: string;
    template?: { spec: { containers: Container[]; initContainers?: Container[] } };
  };
  file: string;
}

function loadK8s(): { resources: Resource[]; kustomization: { resources?: string[]; namespace?: string } } {
  assert.ok(existsSync(K8S_DIR), 'deploy/k8s does not exist');
  const resources: Resource[] = [];
  let kustomization: { resources?: string[]; namespace?: string } | undefined;
  for (const file of readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const docs = parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'));
    for (const doc of docs) {
      assert.deepEqual(doc.errors.map((e) => e.message), [], `deploy/k8s/${file} is not valid YAML`);
      const value = doc.toJS() as Omit<Resource, 'file'> | null;
      if (value === null) continue; // an empty document (e.g. after a trailing ---)
      assert.ok(value.kind && value.apiVersion, `deploy/k8s/${file}: a document without kind/apiVersion`);
      if (value.kind === 'Kustomization') kustomization = value as typeof kustomization;
      else resources.push({ ...value, file });
    }
  }
  assert.ok(kustomization, 'deploy/k8s has no kustomization.yaml');
  return { resources, kustomization };
}

/** The tributary command a container runs: its first argument, or the word after the CLI in its command. */
function k8sCommand(c: Container): string | undefined {
  if (!c.command) return c.args?.[0];
  const words = [...c.command, ...(c.args ?? [])];
  const cli = words.findIndex((w) => /(^|\/)tributary(\.js)?$/.test(w));
  return cli < 0 ? undefined : words[cli + 1];
}

describe('deploy/k8s', () => {
  const { resources, kustomization } = loadK8s();
  const workloads = resources.filter((r) => r.spec?.template?.spec?.containers);
  const containersOf = (r: Resource): Container[] => [...(r.spec!.template!.spec.initContainers ?? []), ...r.spec!.template!.spec.containers];
  const tributary = workloads.flatMap((w) => containersOf(w).filter((c) => isTributaryImage(c.image)).map((c) => ({ w, c, where: `${w.kind} ${w.metadata.name} (${w.file}), container ${c.name}` })));
  const configMaps = new Map(resources.filter((r) => r.kind === 'ConfigMap').map((r) => [r.metadata.name, r.data ?? {}]));
  const find = (kind: string, name: string): Resource | undefined => resources.find((r) => r.kind === kind && r.metadata.name === name);

  /** A container's environment: its ConfigMaps (envFrom), then its own env entries. */
  function envOf(where: string, c: Container): Map<string, EnvVar> {
    const env = new Map<string, EnvVar>();
    for (const from of c.envFrom ?? []) {
      if (!from.configMapRef) continue;
      const data = configMaps.get(from.configMapRef.name);
      assert.ok(data, `${where} reads ConfigMap ${from.configMapRef.name}, which deploy/k8s does not define`);
      for (const [name, value] of Object.entries(data)) env.set(name, { name, value });
    }
    for (const e of c.env ?? []) env.set(e.name, e);
    return env;
  }

  test('every kustomization resource exists, and every manifest is listed', () => {
    const listed = kustomization.resources ?? [];
    for (const r of listed) assert.ok(existsSync(join(K8S_DIR, r)), `kustomization.yaml lists ${r}, which does not exist`);
    const files = readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f) && !/^kustomization\.ya?ml$/.test(f));
    const missing = files.filter((f) => !listed.includes(f));
    assert.deepEqual(missing, [], `kustomization.yaml does not list ${missing.join(', ')}`);
  });

  test('has the namespace, Kafka, PostgreSQL, gateways, router and retain', () => {
    const ns = resources.find((r) => r.kind === 'Namespace');
    assert.ok(ns, 'no Namespace');
    assert.equal(kustomization.namespace, ns.metadata.name, 'kustomization.yaml does not set the namespace it creates');
    for (const r of resources) {
      if (r.metadata.namespace !== undefined) assert.equal(r.metadata.namespace, ns.metadata.name, `${r.kind} ${r.metadata.name} (${r.file}) is in another namespace`);
    }
    assert.ok(find('StatefulSet', 'kafka'), 'no StatefulSet kafka');
    assert.equal(find('Service', 'kafka')?.spec?.clusterIP, 'None', 'no headless Service kafka');
    assert.ok(find('StatefulSet', 'postgres'), 'no StatefulSet postgres');
    assert.ok(find('Service', 'postgres'), 'no Service postgres');
    const byCommand = (cmd: string) => tributary.filter(({ c }) => k8sCommand(c) === cmd).map(({ w }) => w);
    const gateways = byCommand('gateway');
    assert.ok(gateways.some((w) => w.kind === 'StatefulSet' && (w.spec?.replicas ?? 1) >= 2), 'no gateway StatefulSet with at least 2 replicas (stable names keep their downlink topics)');
    assert.ok(find('Service', 'gateway'), 'no Service for the gateways');
    for (const cmd of ['router', 'retain']) assert.ok(byCommand(cmd).some((w) => w.kind === 'Deployment'), `no Deployment running \`tributary ${cmd}\``);
  });

  test('every Tributary container runs a command that `tributary --help` lists', () => {
    assert.ok(tributary.length > 0, 'no container uses the tributary image');
    for (const { c, where } of tributary) assertCommand(where, k8sCommand(c));
  });

  test('every Tributary container has readiness and liveness probes on GET /status', () => {
    for (const { c, where } of tributary) {
      for (const kind of ['readinessProbe', 'livenessProbe'] as const) {
        const http = c[kind]?.httpGet;
        assert.ok(http, `${where} has no ${kind}.httpGet`);
        assert.equal(http.path, '/status', `${where}: ${kind} is not on /status`);
        const port = typeof http.port === 'string' ? c.ports?.find((p) => p.name === http.port)?.containerPort : http.port;
        assert.equal(port, STATUS_PORT, `${where}: ${kind} is not on port ${STATUS_PORT}`);
      }
    }
  });

  test('every container has resource requests and limits', () => {
    for (const w of workloads) {
      for (const c of containersOf(w)) {
        const where = `${w.kind} ${w.metadata.name}, container ${c.name}`;
        for (const r of ['cpu', 'memory']) {
          assert.ok(c.resources?.requests?.[r], `${where} has no ${r} request`);
          assert.ok(c.resources?.limits?.[r], `${where} has no ${r} limit`);
        }
      }
    }
  });

  test('every Tributary container runs on Kafka, with a node name of its own', () => {
    for (const { w, c, where } of tributary) {
      const env = envOf(where, c);
      assert.equal(env.get('TRIBUTARY_BACKBONE__TYPE')?.value, 'kafka', `${where} does not set TRIBUTARY_BACKBONE__TYPE=kafka`);
      const brokers = env.get('TRIBUTARY_BACKBONE__KAFKA__BROKERS')?.value ?? '';
      assert.ok(brokers, `${where} sets no TRIBUTARY_BACKBONE__KAFKA__BROKERS`);
      for (const broker of brokers.split(',')) {
        const host = broker.split(':')[0]!.split('.');
        // kafka, or kafka-0.kafka: the Service is the first label naming one.
        assert.ok(host.some((label) => find('Service', label)), `${where}: Kafka broker "${broker}" names no Service of deploy/k8s`);
      }
      const node = env.get('TRIBUTARY_NODE__NAME');
      assert.ok(node, `${where} sets no TRIBUTARY_NODE__NAME`);
      if ((w.spec?.replicas ?? 1) > 1) {
        assert.equal(node.valueFrom?.fieldRef?.fieldPath, 'metadata.name', `${where}: ${w.spec?.replicas} replicas need distinct node names: TRIBUTARY_NODE__NAME must come from the pod name (fieldRef metadata.name)`);
      }
    }
  });

  test('every TRIBUTARY_ variable is a configuration key', () => {
    for (const [name, data] of configMaps) assertKnownVariables(`ConfigMap ${name}`, Object.keys(data));
    for (const w of workloads) {
      for (const c of containersOf(w)) assertKnownVariables(`${w.kind} ${w.metadata.name} (${relative(ROOT, join(K8S_DIR, w.file))}), container ${c.name}`, (c.env ?? []).map((e) => e.name));
    }
  });
});
