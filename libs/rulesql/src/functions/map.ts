import { isMap, type Value, type ValueMap } from '../value';
import { getPath, setKey, spec, text, toMap, tryJson, type FunctionTable } from './args';

/** A map argument of map_get/map_put: a map, or JSON text of one; anything else is no map. */
function looseMap(v: Value): Value {
  if (typeof v === 'string') return tryJson(v);
  if (Buffer.isBuffer(v)) return tryJson(v.toString('utf8'));
  return v;
}

/** A copy of `root` (a new map when it is none) with `val` at the key path; `root` is not changed. */
function putPath(root: Value, keys: readonly string[], i: number, val: Value): ValueMap {
  const copy: ValueMap = isMap(root) ? { ...root } : {};
  const key = keys[i] as string;
  setKey(copy, key, i === keys.length - 1 ? val : putPath(copy[key], keys, i + 1, val));
  return copy;
}

/** The literal keys of mget/mput: one key, or an array of them for a nested path. */
function literalKeys(name: string, key: Value): string[] {
  if (Array.isArray(key)) return key.map((k) => text(name, k));
  return [text(name, key)];
}

/** The value under literal keys (mget), undefined where one is missing. */
function getKeys(m: Value, keys: readonly string[]): Value {
  let v = m;
  for (const k of keys) {
    if (!isMap(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

function orDefault(v: Value, dflt: Value): Value {
  return v === undefined ? dflt : v;
}

/** Map functions (map_get with a dotted path, mget with a literal key, map_keys...). */
export const MAP_FUNCTIONS: FunctionTable = {
  map_new: spec([0], () => ({})),
  map_get: spec([2, 3], (args) => orDefault(getPath(looseMap(args[1]), text('map_get', args[0])), args[2])),
  map_put: spec([3], (args) => putPath(looseMap(args[2]), text('map_put', args[0]).split('.'), 0, args[1])),
  mget: spec([2, 3], (args) => orDefault(getKeys(toMap('mget', args[1]), literalKeys('mget', args[0])), args[2])),
  mput: spec([3], (args) => putPath(toMap('mput', args[2]), literalKeys('mput', args[0]), 0, args[1])),
  map_keys: spec([1], (args) => Object.keys(toMap('map_keys', args[0]))),
  map_values: spec([1], (args) => Object.values(toMap('map_values', args[0]))),
  map_to_entries: spec([1], (args) => Object.entries(toMap('map_to_entries', args[0])).map(([key, value]) => ({ key, value }))),
  map_size: spec([1], (args) => Object.keys(toMap('map_size', args[0])).length),
};
