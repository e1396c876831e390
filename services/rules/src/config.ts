import { ConfigProblem, configFragment, duration, Infer, jsonObject, type Leaf } from '@tributary/common';
import type { RuleActionSpec, RuleRecord } from '@tributary/records';
import { parseRuleSql } from './engine';
import { type ActionSpec, type ConnectorSpec, parseAction, parseConnector, parseSource, type SourceSpec } from './sinks';

/** A rule as the configuration gives it (`rule_engine.rules.<id>`): a rules-table record without its times. */
export type ConfiguredRule = Omit<RuleRecord, 'created_at' | 'updated_at'>;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Each `<name>: {...}` of an object, validated by `item`; a problem names the entry (`r1: sql: ...`). */
function entries<T>(obj: Record<string, unknown>, prefix: string, item: (name: string, raw: unknown) => T | ConfigProblem, out: T[]): ConfigProblem | undefined {
  for (const [name, v] of Object.entries(obj)) {
    if (!NAME.test(name)) return new ConfigProblem(`${prefix}${name}: names are 1-64 letters, digits, _ or -`);
    const parsed = item(name, v);
    if (parsed instanceof ConfigProblem) return parsed;
    out.push(parsed);
  }
  return undefined;
}

/** A leaf holding an object of named entries (an object in a file, JSON text in an environment variable). */
function objectLeaf<T>(doc: string, parse: (obj: Record<string, unknown>, out: T[]) => ConfigProblem | undefined): Leaf<T[]> {
  const base = jsonObject({}, doc);
  return {
    kind: 'leaf',
    default: [],
    doc,
    parse(raw) {
      const obj = base.parse(raw);
      if (obj instanceof ConfigProblem) return obj;
      const out: T[] = [];
      return parse(obj, out) ?? out;
    },
  };
}

/** `<name> {...}` entries (rules). */
function named<T>(doc: string, item: (name: string, raw: unknown) => T | ConfigProblem): Leaf<T[]> {
  return objectLeaf<T>(doc, (obj, out) =>
    entries(obj, '', (name, raw) => {
      const v = item(name, raw);
      return v instanceof ConfigProblem ? new ConfigProblem(`${name}: ${v.message}`) : v;
    }, out),
  );
}

/** `<type>.<name> {...}` entries (connectors, actions, sources), each parsed by its type's parser. */
function typed<T>(doc: string, parse: (type: string, name: string, raw: unknown) => T | ConfigProblem): Leaf<T[]> {
  return objectLeaf<T>(doc, (obj, out) => {
    for (const [type, byName] of Object.entries(obj)) {
      if (!byName || typeof byName !== 'object' || Array.isArray(byName)) return new ConfigProblem(`${type}: expected an object of named entries`);
      const problem = entries(byName as Record<string, unknown>, `${type}.`, (name, raw) => parse(type, name, raw), out);
      if (problem) return problem;
    }
    return undefined;
  });
}

function parseRule(id: string, raw: unknown): ConfiguredRule | ConfigProblem {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('expected {sql, actions, ...}');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['name', 'sql', 'actions', 'enable', 'description', 'metadata'].includes(k)) return new ConfigProblem(`unknown field "${k}"`);
  if (typeof r.sql !== 'string') return new ConfigProblem('sql: expected a string');
  try {
    parseRuleSql(r.sql);
  } catch (err) {
    return new ConfigProblem(`sql: ${(err as Error).message}`);
  }
  const actions = r.actions ?? [];
  if (!Array.isArray(actions)) return new ConfigProblem('actions: expected an array');
  if (r.enable !== undefined && typeof r.enable !== 'boolean') return new ConfigProblem('enable: expected true or false');
  return {
    id,
    name: typeof r.name === 'string' ? r.name : id,
    sql: r.sql,
    actions: actions as RuleActionSpec[],
    enable: r.enable !== false,
    description: typeof r.description === 'string' ? r.description : '',
    metadata: r.metadata && typeof r.metadata === 'object' ? (r.metadata as Record<string, unknown>) : {},
  };
}

/**
 * The rule engine's keys, EMQX's layout: `rule_engine.rules.<id>`, and the data integrations
 * `connectors.<type>.<name>`, `actions.<type>.<name>` (sinks) and `sources.<type>.<name>`.
 */
export const rulesConfigFragment = configFragment('@tributary/rules', {
  rule_engine: {
    rules: named('Rules: <id> {sql, actions: ["<type>:<name>" | {function: republish|console, args}], enable, description} (docs/rules.md). Written to the rules table at start.', parseRule),
    sample_interval: duration(5_000, 'How often rule and sink rates (matched.rate, rate) are sampled.', 1_000),
  },
  connectors: typed<ConnectorSpec>('Connectors: <type>.<name> {...} for the sinks and sources (types http, kafka_producer, pgsql, mqtt; docs/rules.md).', parseConnector),
  actions: typed<ActionSpec>('Sinks: <type>.<name> {connector, parameters, resource_opts}, referenced by rules as "<type>:<name>" (docs/rules.md).', parseAction),
  sources: typed<SourceSpec>('Sources: mqtt.<name> {connector, parameters {topic, qos}}, used in rules as FROM "$sources/mqtt:<name>" (docs/rules.md).', parseSource),
});

export type RulesConfig = Infer<typeof rulesConfigFragment.schema>;
