import { isUtf8 } from 'node:buffer';
import { isMap, RuleEvalError, str, textOrBytes, type Value, type ValueMap } from '../value';
import type { FunctionSpec, RuleFunction } from './types';

/** A family's functions by lower-case name; index.ts merges the families into FUNCTIONS. */
export type FunctionTable = Readonly<Record<string, FunctionSpec>>;

/** A spec with a fixed list of arities. */
export function spec(arity: readonly number[], fn: RuleFunction): FunctionSpec {
  return { arity, fn };
}

/** EMQX's error for an argument of the wrong type or out of range (`bad_sql_function_argument`). */
export function fail(name: string, detail: string): never {
  throw new RuleEvalError('bad_sql_function_argument', `${name}: ${detail}`);
}

/** A short printable form of a value for error messages. */
export function show(v: Value): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (Buffer.isBuffer(v)) return `<<${v.length} bytes>>`;
  const s = str(v);
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** An integer argument (EMQX's is_integer guard). */
export function int(name: string, v: Value): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail(name, `expected an integer, got ${show(v)}`);
}

/** A number argument (EMQX's is_number guard). */
export function num(name: string, v: Value): number {
  if (typeof v === 'number') return v;
  return fail(name, `expected a number, got ${show(v)}`);
}

/** An array argument (EMQX's is_list guard). */
export function list(name: string, v: Value): Value[] {
  if (Array.isArray(v)) return v;
  return fail(name, `expected an array, got ${show(v)}`);
}

/** A binary argument as bytes: strings as UTF-8, Buffers as they are (EMQX's is_binary guard). */
export function bytes(name: string, v: Value): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (Buffer.isBuffer(v)) return v;
  return fail(name, `expected a string or binary, got ${show(v)}`);
}

/** Bytes a function produced, as the value model wants them: text when valid UTF-8. */
export function binOut(b: Buffer): string | Buffer {
  return textOrBytes(b);
}

/** True for a Buffer that is not valid UTF-8: text functions then work on its bytes. */
function isRawBytes(v: Value): v is Buffer {
  return Buffer.isBuffer(v) && !isUtf8(v);
}

/**
 * Whether text arguments must be handled as bytes: when any of them is a Buffer that is not valid
 * UTF-8, every text argument is read as Latin-1 of its bytes (one char per byte) and results are
 * written back the same way, so splitting or replacing in a binary payload keeps every byte.
 */
export function byteMode(a: Value, b?: Value, c?: Value): boolean {
  return isRawBytes(a) || isRawBytes(b) || isRawBytes(c);
}

/**
 * A text argument (EMQX's string functions): strings, Buffers and the atoms true/false; undefined
 * and null are `badarg` as in EMQX. In byte mode (see {@link byteMode}) the text is one char per byte.
 */
export function text(name: string, v: Value, asBytes = false): string {
  if (typeof v === 'string') return asBytes ? Buffer.from(v, 'utf8').toString('latin1') : v;
  if (Buffer.isBuffer(v)) return v.toString(asBytes ? 'latin1' : 'utf8');
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return fail(name, `expected a string, got ${show(v)}`);
}

/** A text result: in byte mode the chars are bytes again (text when they form valid UTF-8). */
export function textOut(s: string, asBytes: boolean): string | Buffer {
  return asBytes ? textOrBytes(Buffer.from(s, 'latin1')) : s;
}

/** One of the words an option argument may be (EMQX raises function_clause for others). */
export function option<T extends string>(name: string, v: Value, allowed: readonly T[]): T {
  const s = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
  if (s !== undefined && (allowed as readonly string[]).includes(s)) return s as T;
  return fail(name, `expected one of ${allowed.join(', ')}, got ${show(v)}`);
}

/**
 * Erlang's `==` on the value model (eq/2, contains/2): numbers by value, text by bytes (a string
 * equals a Buffer with its UTF-8 bytes), arrays element-wise, maps key by key.
 */
export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a === 'string' || Buffer.isBuffer(a)) {
    if (typeof b === 'string' || Buffer.isBuffer(b)) {
      const ab = typeof a === 'string' ? Buffer.from(a) : a;
      const bb = typeof b === 'string' ? Buffer.from(b) : b;
      return ab.equals(bb);
    }
    return false;
  }
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!valueEquals(a[i], b[i])) return false;
    return true;
  }
  if (isMap(a)) {
    if (!isMap(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    for (const k of keys) if (!Object.hasOwn(b, k) || !valueEquals(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/** Sets a map key, `__proto__` included (a plain assignment would set the prototype instead). */
export function setKey(m: ValueMap, key: string, v: Value): void {
  if (key === '__proto__') Object.defineProperty(m, key, { value: v, enumerable: true, writable: true, configurable: true });
  else m[key] = v;
}

/** The value at a dotted key path (`a.b.c`) through nested maps; undefined where one is missing. */
export function getPath(root: Value, path: string): Value {
  let v = root;
  let start = 0;
  for (;;) {
    const dot = path.indexOf('.', start);
    const key = dot < 0 ? path.slice(start) : path.slice(start, dot);
    if (!isMap(v) || !Object.hasOwn(v, key)) return undefined;
    v = v[key];
    if (dot < 0) return v;
    start = dot + 1;
  }
}

/** JSON text decoded into the value model; `undefined` when it is not valid JSON. */
export function tryJson(s: string): Value {
  try {
    return JSON.parse(s) as Value;
  } catch {
    return undefined;
  }
}

/**
 * EMQX's `map/1` conversion, which the map functions apply to their map argument: a map as it is,
 * JSON text decoded (it must hold an object), an array of `[key, value]` pairs as a map.
 */
export function toMap(name: string, v: Value): ValueMap {
  if (isMap(v)) return v;
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const m = tryJson(typeof v === 'string' ? v : v.toString('utf8'));
    if (isMap(m)) return m;
    return fail(name, `expected a map or a JSON object, got ${show(v)}`);
  }
  if (Array.isArray(v)) {
    const out: ValueMap = {};
    for (const pair of v) {
      if (!Array.isArray(pair) || pair.length !== 2) fail(name, `expected [key, value] pairs, got ${show(pair)}`);
      setKey(out, str(pair[0]), pair[1]);
    }
    return out;
  }
  return fail(name, `expected a map, got ${show(v)}`);
}

/**
 * A small map that forgets its oldest entry when full: compiled regular expressions and parsed
 * format strings are cached so a rule does not recompile them per message.
 */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  /** The value for `key`, computed by `make` (and kept) on a miss. */
  get(key: K, make: (key: K) => V): V {
    const hit = this.map.get(key);
    if (hit !== undefined) return hit;
    const v = make(key);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, v);
    return v;
  }
}
