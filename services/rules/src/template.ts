import { ValidationError } from '@tributary/common';
import { isMap, jsonEncode, str, type Value, type ValueMap } from '@tributary/rulesql';

/**
 * EMQX's templates (actions, sinks, republish): text with `${path}` placeholders over the data
 * a rule selected. A path is names separated by dots (`payload.a.b`), 'quoted' names
 * (`pub_props.'User-Property'`) and 1-based indexes (`a[1]`, `a[-1]` the last); `${.}` is the
 * whole data map and a leading dot marks an explicit path from it (`${.payload.x}`). A string
 * (or bytes) holding JSON is decoded when the path goes into it. A `${` without its `}` is text.
 */
export interface Template {
  readonly text: string;
  /** The text with each placeholder rendered: missing → `undefined`, maps/arrays → JSON, others via str(). */
  render(data: ValueMap): string;
  /** a template that is exactly one placeholder gives the raw value (qos "${qos}" → number) */
  value(data: ValueMap): Value;
  /** The placeholders' paths as written (trimmed), in order: `payload.a.b`, `.`. */
  readonly placeholders: readonly string[];
}

/** One step of a path: a key, or a 1-based index (negative from the end) written `[n]`. */
type Step = string | { readonly index: number };

/** A parsed placeholder: `steps` empty means the whole data map (`${.}`). */
interface Placeholder {
  readonly source: string;
  readonly steps: readonly Step[];
}

type Part = string | Placeholder;

const NAME_END = new Set(['.', '[', ']', "'", '"']);

function badPath(source: string, why: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `template placeholder \${${source}}: ${why}`);
}

/** Parses what is between `${` and `}` (trimmed). Throws a ValidationError naming the placeholder. */
function parsePath(source: string): Placeholder {
  if (source === '') throw badPath(source, 'empty; write ${.} for the whole data map');
  if (source === '.') return { source, steps: [] };
  const steps: Step[] = [];
  let i = source.startsWith('.') ? 1 : 0;
  let needSep = false;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '[') {
      const close = source.indexOf(']', i);
      const inner = close < 0 ? '' : source.slice(i + 1, close).trim();
      if (!/^-?\d+$/.test(inner)) throw badPath(source, `expected [n] with a whole number at ${i + 1}`);
      steps.push({ index: Number(inner) });
      i = close + 1;
      needSep = true;
      continue;
    }
    if (needSep) {
      if (c !== '.') throw badPath(source, `expected "." or "[" at ${i + 1}`);
      i++;
    }
    const q = source[i];
    if (q === "'" || q === '"') {
      const close = source.indexOf(q, i + 1);
      if (close < 0) throw badPath(source, `unterminated ${q}quoted${q} name`);
      steps.push(source.slice(i + 1, close));
      i = close + 1;
    } else {
      let j = i;
      while (j < source.length && !NAME_END.has(source[j]!)) j++;
      const name = source.slice(i, j).trim();
      if (name === '') throw badPath(source, `empty name at ${i + 1}`);
      steps.push(name);
      i = j;
    }
    needSep = true;
  }
  return { source, steps };
}

/** Splits a template's text into literal parts and placeholders; adjacent text is joined. */
function parseParts(text: string): Part[] {
  const parts: Part[] = [];
  let at = 0;
  for (;;) {
    const open = text.indexOf('${', at);
    const close = open < 0 ? -1 : text.indexOf('}', open + 2);
    if (close < 0) {
      if (at < text.length) pushText(parts, text.slice(at));
      return parts;
    }
    if (open > at) pushText(parts, text.slice(at, open));
    parts.push(parsePath(text.slice(open + 2, close).trim()));
    at = close + 1;
  }
}

function pushText(parts: Part[], s: string): void {
  const last = parts.length - 1;
  if (typeof parts[last] === 'string') parts[last] = (parts[last] as string) + s;
  else parts.push(s);
}

/**
 * The value a string or bytes decode to when a path goes into them: only text that looks like a
 * JSON object or array is parsed (anything else has no fields); undecodable text is missing.
 */
function decoded(v: string | Buffer, memo: DecodeMemo): Value {
  const s = typeof v === 'string' ? v : v.toString('utf8');
  if (memo.src === s) return memo.val;
  let first = 0;
  while (first < s.length && (s.charCodeAt(first) <= 0x20)) first++;
  const c = s[first];
  let val: Value;
  if (c !== '{' && c !== '[') val = undefined;
  else {
    try {
      val = JSON.parse(s) as Value;
    } catch {
      val = undefined;
    }
  }
  memo.src = s;
  memo.val = val;
  return val;
}

/** The last JSON text decoded during one render: `${payload.a}` and `${payload.b}` decode once. */
interface DecodeMemo {
  src: string | undefined;
  val: Value;
}

function step(v: Value, s: Step, memo: DecodeMemo): Value {
  if (typeof v === 'string' || Buffer.isBuffer(v)) v = decoded(v, memo);
  if (Array.isArray(v)) {
    const n = typeof s === 'string' ? (/^-?\d+$/.test(s) ? Number(s) : NaN) : s.index;
    if (!Number.isInteger(n) || n === 0) return undefined;
    return n > 0 ? v[n - 1] : v[v.length + n];
  }
  if (isMap(v) && typeof s === 'string') return Object.hasOwn(v, s) ? v[s] : undefined;
  return undefined;
}

/** The value at a placeholder's path in `data` (undefined when any step is missing). */
function lookup(p: Placeholder, data: ValueMap, memo: DecodeMemo): Value {
  const steps = p.steps;
  let v: Value = data;
  for (let i = 0; i < steps.length && v !== undefined; i++) v = step(v, steps[i]!, memo);
  return v;
}

function newMemo(): DecodeMemo {
  return { src: undefined, val: undefined };
}

/** Compiles an EMQX template; throws a ValidationError (INVALID_ARGUMENT) for a malformed placeholder. */
export function compileTemplate(text: string): Template {
  const parts = parseParts(text);
  const placeholders = parts.filter((p): p is Placeholder => typeof p !== 'string').map((p) => p.source);
  const only = parts.length === 1 && typeof parts[0] !== 'string' ? parts[0] : undefined;
  if (parts.length === 0 || (parts.length === 1 && typeof parts[0] === 'string')) {
    return { text, placeholders, render: () => text, value: () => text };
  }
  const render = (data: ValueMap): string => {
    const memo = newMemo();
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : str(lookup(part, data, memo));
    return out;
  };
  return {
    text,
    placeholders,
    render,
    value: only ? (data) => lookup(only, data, newMemo()) : render,
  };
}

// ---------------------------------------------------------------------------------------------
// SQL templates (PostgreSQL): placeholders become bind parameters.

/** A slot of an SQL statement: the value of a placeholder, bound as it is or as its text. */
interface Param {
  readonly at: Placeholder;
  /** True inside a quoted literal: bound as the text template rendering (str()). */
  readonly asText: boolean;
}

type SqlPart = string | Param;

/** A compiled SQL template; see {@link compileSqlTemplate}. */
export interface SqlTemplate {
  /** The statement with $1, $2 ... in place of the placeholders. */
  readonly text: string;
  /** The values of $1, $2 ... for one data map. */
  params(data: ValueMap): unknown[];
  /**
   * True for a plain `INSERT ... VALUES (...)` whose placeholders are all in its one VALUES tuple
   * (text after the tuple, such as ON CONFLICT, is kept): {@link textForRows} then inserts many
   * rows in one statement.
   */
  readonly multiRow: boolean;
  /** The statement inserting `rows` rows: the tuple repeated, parameters numbered row after row (params of each row concatenated). Throws unless multiRow. */
  textForRows(rows: number): string;
}

/** How a placeholder's value is bound: undefined → NULL, maps/arrays → JSON text, bytes as bytea. */
function bindValue(v: Value): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN';
  if (typeof v === 'object' && !Buffer.isBuffer(v)) return jsonEncode(v);
  return v;
}

function sqlError(sql: string, why: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `SQL template: ${why} (in ${JSON.stringify(sql.length > 120 ? `${sql.slice(0, 117)}...` : sql)})`);
}

/** Index of the `}` closing a placeholder opened at `open` (`${`), or -1. */
function placeholderEnd(sql: string, open: number): number {
  return sql.indexOf('}', open + 2);
}

/**
 * A single-quoted literal starting at `open` (`'`), with its placeholders: its end (after the
 * closing quote) and its pieces. `''` is a quote; in an E'' string a backslash escapes.
 */
function scanLiteral(sql: string, open: number, escapes: boolean): { end: number; pieces: (string | Placeholder)[] } {
  const pieces: (string | Placeholder)[] = [];
  let buf = '';
  let i = open + 1;
  for (;;) {
    if (i >= sql.length) throw sqlError(sql, 'unterminated quoted string');
    const c = sql[i]!;
    if (escapes && c === '\\' && i + 1 < sql.length) {
      buf += sql.slice(i, i + 2);
      i += 2;
    } else if (c === "'") {
      if (sql[i + 1] === "'") {
        buf += "''";
        i += 2;
      } else {
        if (buf) pieces.push(buf);
        return { end: i + 1, pieces };
      }
    } else if (c === '$' && sql[i + 1] === '{' && placeholderEnd(sql, i) > 0 && !sql.slice(i, placeholderEnd(sql, i)).includes("'")) {
      const close = placeholderEnd(sql, i);
      if (buf) pieces.push(buf);
      buf = '';
      pieces.push(parsePath(sql.slice(i + 2, close).trim()));
      i = close + 1;
    } else {
      buf += c;
      i++;
    }
  }
}

/** The closing position of what opens at `i` and cannot hold placeholders (comment, "identifier", $tag$ string). */
function skipOpaque(sql: string, i: number): number | undefined {
  const c = sql[i];
  if (c === '-' && sql[i + 1] === '-') {
    const nl = sql.indexOf('\n', i);
    return nl < 0 ? sql.length : nl;
  }
  if (c === '/' && sql[i + 1] === '*') {
    let depth = 0;
    for (let j = i; j < sql.length - 1; j++) {
      if (sql[j] === '/' && sql[j + 1] === '*') {
        depth++;
        j++;
      } else if (sql[j] === '*' && sql[j + 1] === '/') {
        depth--;
        j++;
        if (depth === 0) return j + 1;
      }
    }
    throw sqlError(sql, 'unterminated /* comment');
  }
  const checkNoPlaceholder = (from: number, to: number, what: string): number => {
    if (sql.slice(from, to).includes('${')) throw sqlError(sql, `a placeholder inside ${what} cannot be a bind parameter`);
    return to;
  };
  if (c === '"') {
    const close = sql.indexOf('"', i + 1);
    if (close < 0) throw sqlError(sql, 'unterminated "identifier"');
    return checkNoPlaceholder(i, close + 1, 'a "quoted identifier"');
  }
  if (c === '$') {
    const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
    if (m && !(i > 0 && /[A-Za-z0-9_]/.test(sql[i - 1]!))) {
      const close = sql.indexOf(m[0], i + m[0].length);
      if (close < 0) throw sqlError(sql, `unterminated ${m[0]} string`);
      return checkNoPlaceholder(i, close + m[0].length, `a ${m[0]} string`);
    }
  }
  return undefined;
}

/** Where the one top-level `VALUES (...)` tuple of a statement sits in its parts, if any. */
interface Tuple {
  start: number;
  end: number;
}

function partsText(parts: readonly SqlPart[], offsetOf: (paramIndex: number) => number): string {
  let out = '';
  let k = 0;
  for (const p of parts) out += typeof p === 'string' ? p : `$${offsetOf(k++) + 1}`;
  return out;
}

/**
 * SQL for PostgreSQL: each ${x} becomes $1, $2 ... bind parameters (never string-spliced).
 * A placeholder is bound as its value (undefined → NULL, maps and arrays → JSON text, bytes →
 * bytea); one inside a quoted literal (`'${x}'`, `'dev-${id}'`) is bound as its text and the
 * literal becomes a concatenation. Placeholders inside a "quoted identifier" or a $$ string, and
 * `$1` parameters of the statement's own, are refused (ValidationError INVALID_ARGUMENT).
 */
export function compileSqlTemplate(sql: string): SqlTemplate {
  const parts: SqlPart[] = [];
  const params: Param[] = [];
  let buf = '';
  let depth = 0;
  let valuesAt = -1; // index in `parts` terms: a "VALUES" just seen at depth 0, awaiting "("
  const tuples: Tuple[] = [];
  let topLevelValues = 0;
  const flush = (): void => {
    if (buf) parts.push(buf);
    buf = '';
  };
  const addParam = (at: Placeholder, asText: boolean): void => {
    flush();
    const p = { at, asText };
    params.push(p);
    parts.push(p);
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const opaqueEnd = skipOpaque(sql, i);
    if (opaqueEnd !== undefined) {
      buf += sql.slice(i, opaqueEnd);
      i = opaqueEnd;
      continue;
    }
    if (c === "'") {
      const escapes = i > 0 && (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !(i > 1 && /[A-Za-z0-9_]/.test(sql[i - 2]!));
      const { end, pieces } = scanLiteral(sql, i, escapes);
      const prefix = escapes ? 'E' : '';
      if (pieces.length === 1 && typeof pieces[0] !== 'string') {
        if (escapes) buf = buf.slice(0, -1);
        addParam(pieces[0]!, true);
      } else if (pieces.some((p) => typeof p !== 'string')) {
        if (escapes) buf = buf.slice(0, -1);
        buf += '(';
        pieces.forEach((p, n) => {
          if (n > 0) buf += ' || ';
          if (typeof p === 'string') buf += `${prefix}'${p}'`;
          else addParam(p, true);
        });
        buf += ')';
      } else buf += sql.slice(i, end);
      i = end;
      continue;
    }
    if (c === '$' && sql[i + 1] === '{' && placeholderEnd(sql, i) > 0) {
      const close = placeholderEnd(sql, i);
      addParam(parsePath(sql.slice(i + 2, close).trim()), false);
      i = close + 1;
      continue;
    }
    if (c === '$' && /\d/.test(sql[i + 1] ?? '')) throw sqlError(sql, 'use ${...} placeholders, not $1 parameters of its own');
    if (/[A-Za-z_]/.test(c) && !(i > 0 && /[A-Za-z0-9_$]/.test(sql[i - 1]!))) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0];
      if (depth === 0 && word.toLowerCase() === 'values') {
        topLevelValues++;
        valuesAt = 0;
      } else valuesAt = -1;
      buf += word;
      i += word.length;
      continue;
    }
    if (c === '(') {
      if (depth === 0 && valuesAt === 0) {
        flush();
        tuples.push({ start: parts.length, end: -1 });
      }
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth < 0) throw sqlError(sql, 'unbalanced ")"');
      if (depth === 0 && tuples.length > 0 && tuples[tuples.length - 1]!.end < 0) {
        buf += c;
        flush();
        tuples[tuples.length - 1]!.end = parts.length;
        i++;
        valuesAt = -1;
        continue;
      }
    }
    if (!/\s/.test(c)) valuesAt = -1;
    buf += c;
    i++;
  }
  flush();
  const text = partsText(parts, (k) => k);

  // Multi-row: INSERT, one VALUES with one tuple holding every parameter, nothing but text after it.
  let tuple: Tuple | undefined;
  if (/^\s*insert\b/i.test(sql) && topLevelValues === 1 && tuples.length === 1 && tuples[0]!.end > 0) {
    const t = tuples[0]!;
    const inTuple = parts.slice(t.start, t.end).filter((p) => typeof p !== 'string').length;
    const after = parts.slice(t.end);
    const rest = after.map((p) => (typeof p === 'string' ? p : '$')).join('');
    if (inTuple === params.length && after.every((p) => typeof p === 'string') && !/^\s*,/.test(rest) && !/;\s*\S/.test(rest)) tuple = t;
  }
  const perRow = params.length;
  return {
    text,
    params: (data) => {
      const memo = newMemo();
      return params.map((p) => {
        const v = lookup(p.at, data, memo);
        return p.asText ? str(v) : bindValue(v);
      });
    },
    multiRow: tuple !== undefined,
    textForRows: (rows) => {
      if (!tuple) throw new ValidationError('INVALID_ARGUMENT', 'SQL template: not a single-tuple INSERT ... VALUES statement');
      if (!Number.isInteger(rows) || rows < 1) throw new ValidationError('INVALID_ARGUMENT', `SQL template: rows must be a whole number >= 1, got ${rows}`);
      const head = partsText(parts.slice(0, tuple.start), (k) => k);
      const body = parts.slice(tuple.start, tuple.end);
      const tail = partsText(parts.slice(tuple.end), (k) => k);
      const rowsText: string[] = [];
      for (let r = 0; r < rows; r++) rowsText.push(partsText(body, (k) => r * perRow + k));
      return `${head}${rowsText.join(', ')}${tail}`;
    },
  };
}
