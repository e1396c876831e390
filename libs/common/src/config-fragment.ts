import { isLeaf, SchemaNode } from './config-schema';
import { TributaryError } from './errors';

/** Top-level keys mapped to their subtrees: a fragment's keys, or the whole composed schema. */
export type ConfigSchema = { readonly [key: string]: SchemaNode };

/**
 * The configuration keys one package owns (e.g. `backbone.*` in libs/backbone), with their types,
 * defaults and docs. A process composes the fragments of the packages it runs into one schema.
 */
export interface ConfigFragment<S extends ConfigSchema = ConfigSchema> {
  /** The package that owns these keys; errors about them name it. */
  readonly owner: string;
  readonly schema: S;
}

export function configFragment<S extends ConfigSchema>(owner: string, schema: S): ConfigFragment<S> {
  return { owner, schema };
}

/** The schema of fragments [A, B, ...] is A & B & ...: one object type with every top-level key. */
export type ComposedSchema<F extends readonly ConfigFragment[]> = F extends readonly [ConfigFragment<infer S>, ...infer Rest extends readonly ConfigFragment[]]
  ? S & ComposedSchema<Rest>
  : unknown;

/** Fragments that cannot be composed: a top-level key owned twice, or a key the environment could not set. */
export class ConfigSchemaError extends TributaryError {
  constructor(message: string) {
    super('CONFIG_SCHEMA', message);
  }
}

/**
 * Lower-case words joined by single underscores: TRIBUTARY_<PATH> upper-cases keys and uses `__`
 * between levels, so a key with capitals or `__` could never be set from the environment.
 */
const KEY = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

function checkKeys(owner: string, node: SchemaNode, path: string): void {
  if (isLeaf(node)) return;
  for (const [key, child] of Object.entries(node)) {
    const at = path ? `${path}.${key}` : key;
    if (!KEY.test(key)) throw new ConfigSchemaError(`config key "${at}" of ${owner} is not lower-case words joined by single underscores`);
    checkKeys(owner, child, at);
  }
}

/**
 * One schema from the fragments, keys in fragment order (the order docs/configuration.md lists
 * them). Throws a ConfigSchemaError naming both owners when two fragments own the same top-level key.
 */
export function composeConfigSchema<const F extends readonly ConfigFragment[]>(fragments: F): ComposedSchema<F> {
  const composed: Record<string, SchemaNode> = {};
  const owners = new Map<string, string>();
  for (const { owner, schema } of fragments) {
    checkKeys(owner, schema, '');
    for (const [key, node] of Object.entries(schema)) {
      const first = owners.get(key);
      if (first !== undefined) throw new ConfigSchemaError(`config key "${key}" is defined by both ${first} and ${owner}`);
      owners.set(key, owner);
      composed[key] = node;
    }
  }
  return composed as ComposedSchema<F>;
}
