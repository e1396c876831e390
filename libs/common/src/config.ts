import { readFileSync } from 'node:fs';
import { ConfigSchema, configFragment } from './config-fragment';
import { ConfigError } from './errors';
import { ConfigProblem, Infer, isLeaf, oneOf, SchemaNode, str } from './config-schema';

/**
 * The keys every process has: its name, data directory and log level. The other keys are in the
 * fragments of the packages that use them (libs/backbone, services/gateway, services/api), composed
 * into the one schema in services/cli/src/config.ts. Environment overrides use EMQX's convention:
 * TRIBUTARY_<PATH> with `__` between levels, e.g. TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND.
 */
export const commonConfigFragment = configFragment('@tributary/common', {
  node: {
    name: str('tributary@127.0.0.1', 'Node name, used in $SYS topics and logs.', { nonEmpty: true }),
    data_dir: str('data', 'Directory for all durable state (embedded backbone, certificates).', { nonEmpty: true }),
  },
  log: {
    level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'Log level.'),
  },
});

export type CommonConfig = Infer<typeof commonConfigFragment.schema>;

/** ConfigError lives with the other errors (errors.ts); re-exported where it was defined. */
export { ConfigError };

export interface LoadOptions {
  /** A JSON config file; keys nest like the schema ({"listeners": {"tcp": ...}}) or use dotted paths. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides applied last (dotted paths), e.g. from tests. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig<C> {
  config: C;
  /** Human-readable warnings (unknown environment variables or file keys). */
  warnings: string[];
}

export const ENV_PREFIX = 'TRIBUTARY_';
/** Environment variables that are not config keys. */
const RESERVED_ENV = new Set(['TRIBUTARY_CONFIG_FILE']);

export function envName(path: string): string {
  return ENV_PREFIX + path.split('.').map((p) => p.toUpperCase()).join('__');
}

function leaves(node: SchemaNode, prefix = '', out = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  if (isLeaf(node)) out.set(prefix, node);
  else for (const [k, child] of Object.entries(node)) leaves(child, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

/** One key as `tributary config` and docs/configuration.md show it. */
export interface ConfigKeyDoc {
  key: string;
  env: string;
  default: unknown;
  doc: string;
}

/** Every key of the schema, in schema order, with its doc, default and environment variable name. */
export function describeConfig(schema: ConfigSchema): ConfigKeyDoc[] {
  return [...leaves(schema)].map(([key, leaf]) => {
    const l = leaf as { default: unknown; doc: string };
    return { key, env: envName(key), default: l.default, doc: l.doc };
  });
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>): void {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, obj);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
  node[parts[parts.length - 1]!] = value;
}

/**
 * Builds the configuration of `schema` (services/cli composes the whole one): defaults, then
 * the file, then TRIBUTARY_* variables, then overrides.
 */
export function loadConfig<S extends ConfigSchema>(configSchema: S, opts: LoadOptions = {}): LoadedConfig<Infer<S>> {
  const env = opts.env ?? process.env;
  const schema = leaves(configSchema);
  const raw = new Map<string, { value: unknown; source: string }>();
  const warnings: string[] = [];
  const problems: string[] = [];

  const file = opts.file ?? env.TRIBUTARY_CONFIG_FILE;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError([`config file ${file}: ${(err as Error).message}`], { cause: err });
    }
    const flat = new Map<string, unknown>();
    flatten(parsed, '', flat);
    for (const [key, value] of flat) {
      if (schema.has(key)) raw.set(key, { value, source: `${file}` });
      else warnings.push(`unknown key "${key}" in config file ${file} ignored`);
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || RESERVED_ENV.has(name) || value === undefined) continue;
    const key = name.slice(ENV_PREFIX.length).split('__').map((p) => p.toLowerCase()).join('.');
    if (schema.has(key)) raw.set(key, { value, source: `environment variable ${name}` });
    else warnings.push(`unknown environment variable ${name} ignored (no config key "${key}")`);
  }
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (!schema.has(key)) problems.push(`${key}: unknown config key`);
    else raw.set(key, { value, source: 'override' });
  }

  const config: Record<string, unknown> = {};
  for (const [key, node] of schema) {
    const leaf = node as { default: unknown; parse(raw: unknown): unknown };
    const given = raw.get(key);
    if (!given) {
      setPath(config, key, leaf.default);
      continue;
    }
    const parsed = leaf.parse(given.value);
    if (parsed instanceof ConfigProblem) problems.push(`${key} (${given.source}): ${parsed.message}`);
    else setPath(config, key, parsed);
  }
  if (problems.length) throw new ConfigError(problems);
  return { config: config as unknown as Infer<S>, warnings };
}
