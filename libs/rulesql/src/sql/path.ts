import { isMap, type Value } from '../value';
import { parseError, readQuoted } from './lexer';

const hasOwn = Object.prototype.hasOwnProperty;

/** Strings and Buffers: what EMQX calls binaries. */
export function isBinary(v: Value): v is string | Buffer {
  return typeof v === 'string' || Buffer.isBuffer(v);
}

/** Can this character start JSON text (`{ [ " - 0-9 t f n`)? Saves a throw for plain words. */
function jsonStart(c: number): boolean {
  return c === 0x7b || c === 0x5b || c === 0x22 || c === 0x2d || (c >= 0x30 && c <= 0x39) || c === 0x74 || c === 0x66 || c === 0x6e;
}

/**
 * A string or Buffer read as JSON, or undefined when it is not JSON: how a path reaches into a
 * value that is JSON text (`a.b` where `a` is '{"b":1}'). Only `payload.` paths fail instead.
 */
export function softDecode(v: string | Buffer): Value {
  let i = 0;
  const n = v.length;
  if (typeof v === 'string') {
    while (i < n && v.charCodeAt(i) <= 0x20) i++;
    if (i === n || !jsonStart(v.charCodeAt(i))) return undefined;
  } else {
    while (i < n && (v[i] as number) <= 0x20) i++;
    if (i === n || !jsonStart(v[i] as number)) return undefined;
  }
  try {
    return JSON.parse(typeof v === 'string' ? v : v.toString('utf8')) as Value;
  } catch {
    return undefined;
  }
}

/**
 * `v.key`: a map's own key (JSON text is decoded first); undefined for anything else. `plain`
 * says the key is not also a name on Object.prototype, so the own-property check can be skipped.
 */
export function stepKey(v: Value, key: string, plain: boolean): Value {
  if (isBinary(v)) v = softDecode(v);
  if (!isMap(v)) return undefined;
  return plain || hasOwn.call(v, key) ? v[key] : undefined;
}

/** `v[i]`: 1-based, negative from the end; undefined for 0, a non-integer, out of range or a non-list. */
export function stepIndex(v: Value, i: Value): Value {
  if (isBinary(v)) v = softDecode(v);
  if (!Array.isArray(v) || typeof i !== 'number' || !Number.isInteger(i) || i === 0) return undefined;
  return i > 0 ? v[i - 1] : v[v.length + i];
}

/** Whether `key` may be read with a plain property access (it is not an Object.prototype name). */
export function isPlainKey(key: string): boolean {
  return !(key in Object.prototype);
}

/**
 * Looks a path up in a value, as a rule SQL path does: strings are map keys, numbers 1-based
 * list indexes (negative from the end), and a string or Buffer on the way that is JSON text is
 * decoded (`payload` included). Never throws: anything missing or not JSON gives undefined.
 */
export function getPath(data: Value, path: readonly (string | number)[]): Value {
  let v = data;
  for (const seg of path) {
    v = typeof seg === 'number' ? stepIndex(v, seg) : stepKey(v, seg, false);
    if (v === undefined) return undefined;
  }
  return v;
}

/**
 * Splits path text such as `payload.a.b`, `pub_props.'User-Property'` or `a[1].b` (also `a[-1]`,
 * `"x y".z`) into keys and 1-based indexes for {@link getPath}. A key is any run of characters
 * other than `.` and `[`, or a quoted string (a doubled quote stands for itself); digits after a
 * `.` are a key, as in SQL. Throws ValidationError('SQL_PARSE_ERROR') for malformed text.
 */
export function parsePath(text: string): (string | number)[] {
  const s = text.trim();
  const out: (string | number)[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw parseError(`${what} in path '${s}'`, 1, i + 1);
  };
  const key = (): void => {
    if (s[i] === "'" || s[i] === '"') {
      const quoted = readQuoted(s, i);
      if (!quoted) fail('unterminated quote');
      else {
        out.push(quoted.text);
        i = quoted.end;
      }
      return;
    }
    const from = i;
    while (i < s.length && s[i] !== '.' && s[i] !== '[') i++;
    if (i === from) fail('empty key');
    out.push(s.slice(from, i));
  };
  key();
  while (i < s.length) {
    if (s[i] === '.') {
      i++;
      key();
    } else if (s[i] === '[') {
      const close = s.indexOf(']', i);
      if (close < 0) fail("missing ']'");
      const body = s.slice(i + 1, close);
      if (!/^-?\d+$/.test(body)) fail('an index must be an integer');
      out.push(Number(body));
      i = close + 1;
    } else fail(`unexpected '${s[i]}'`);
  }
  return out;
}
