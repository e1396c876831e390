import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { jsonEncode, type Value } from '../value';
import { spec, text, type FunctionTable } from './args';

/**
 * A key for the dictionaries: Erlang compares keys by value and type, so 1 and '1' differ while a
 * string and a binary with the same bytes are one key.
 */
function dictKey(v: Value): string {
  if (typeof v === 'string') return `s${v}`;
  if (Buffer.isBuffer(v)) return isUtf8(v) ? `s${v.toString('utf8')}` : `b${v.toString('hex')}`;
  if (typeof v === 'number') return `n${v}`;
  if (v === undefined) return 'u';
  return `j${jsonEncode(v)}`;
}

/** kv_store_*: one store for the whole process, shared by every rule (EMQX's ETS table). */
const kvStore = new Map<string, Value>();
/** proc_dict_*: one dictionary per rule (EMQX's per-process dictionary of the rule's worker). */
const ruleDicts = new Map<string, Map<string, Value>>();
/** getenv values: read once from the OS environment, immutable after (as EMQX caches them). */
const envCache = new Map<string, string>();

function ruleDict(ruleId: string): Map<string, Value> {
  let d = ruleDicts.get(ruleId);
  if (d === undefined) {
    d = new Map();
    ruleDicts.set(ruleId, d);
  }
  return d;
}

/** Forgets a rule's proc_dict entries (when the rule is deleted). */
export function dropRuleDict(ruleId: string): void {
  ruleDicts.delete(ruleId);
}

/** Empties the kv_store, every rule's proc_dict and the getenv cache (tests). */
export function resetFunctionState(): void {
  kvStore.clear();
  ruleDicts.clear();
  envCache.clear();
}

/** UUIDs, getenv, the per-rule dictionary (proc_dict_*) and the process-wide store (kv_store_*). */
export const MISC_FUNCTIONS: FunctionTable = {
  uuid_v4: spec([0], () => randomUUID()),
  uuid_v4_no_hyphen: spec([0], () => randomUUID().replace(/-/g, '')),
  getenv: spec([1], (args) => {
    const name = text('getenv', args[0]);
    let v = envCache.get(name);
    if (v === undefined) {
      v = process.env[`EMQXVAR_${name}`] ?? '';
      envCache.set(name, v);
    }
    return v;
  }),
  proc_dict_get: spec([1], (args, ctx) => ruleDict(ctx.ruleId).get(dictKey(args[0]))),
  proc_dict_put: spec([2], (args, ctx) => {
    const d = ruleDict(ctx.ruleId);
    const k = dictKey(args[0]);
    const old = d.get(k);
    d.set(k, args[1]);
    return old;
  }),
  proc_dict_del: spec([1], (args, ctx) => {
    const d = ruleDict(ctx.ruleId);
    const k = dictKey(args[0]);
    const old = d.get(k);
    d.delete(k);
    return old;
  }),
  kv_store_get: spec([1, 2], (args) => {
    const k = dictKey(args[0]);
    return kvStore.has(k) ? kvStore.get(k) : args[1];
  }),
  kv_store_put: spec([2], (args) => {
    kvStore.set(dictKey(args[0]), args[1]);
    return true;
  }),
  kv_store_del: spec([1], (args) => {
    kvStore.delete(dictKey(args[0]));
    return true;
  }),
};
