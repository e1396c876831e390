import { topicMatches } from '@tributary/mqtt';
import type { FunctionContext, RuleFunction } from '../functions/types';
import { isMap, RuleEvalError, str, type Value, type ValueMap } from '../value';
import type { ArithOp, CmpOp, Expr, Field, PathSeg, Target } from './ast';
import { EVENT_PREFIXES, type Statement } from './parser';
import { isBinary, isPlainKey, softDecode, stepIndex, stepKey } from './path';

/** Options of one evaluation. */
export interface EvalOptions {
  /** The rule being evaluated: `metadata.rule_id`, and what functions see as `ruleId`. */
  ruleId: string;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The state of one evaluation; also what functions get as their FunctionContext. `vars` holds
 * the aliases set so far (null-prototype, over the event's columns); the payload's decoded JSON
 * is kept for the evaluation so that `payload.a` and `payload.b` decode once.
 */
class Ctx implements FunctionContext {
  vars: ValueMap | null = null;
  meta: ValueMap | undefined = undefined;
  decodedFrom: Value = undefined;
  decoded: Value = undefined;
  hasDecoded = false;

  constructor(
    readonly event: ValueMap,
    readonly ruleId: string,
  ) {}
}

type Ev = (c: Ctx) => Value;
type Run = (c: Ctx, out: ValueMap) => void;

/** A compiled path step; one shape for all kinds (t: 0 key, 1 constant index, 2 computed index, 3 head, 4 tail). */
interface Step {
  readonly t: 0 | 1 | 2 | 3 | 4;
  readonly key: string;
  readonly plain: boolean;
  readonly i: number;
  readonly ev: Ev | null;
}

interface CompiledTarget {
  readonly root: string;
  readonly plain: boolean;
  readonly payload: boolean;
  readonly steps: readonly Step[];
}

interface Plan {
  readonly fields: readonly Run[];
  /** FOREACH: the collection's expression and the items' alias (`item` by default). */
  readonly collect: { readonly ev: Ev; readonly field: CompiledTarget; readonly item: CompiledTarget } | null;
  readonly doFields: readonly Run[] | null;
  readonly incase: Ev | null;
  readonly where: Ev | null;
}

const plans = new WeakMap<Statement, Plan>();

// ---------------------------------------------------------------------------------------------
// Columns, aliases and the payload

function metadata(c: Ctx): ValueMap {
  if (c.meta === undefined) {
    const given = c.event['metadata'];
    c.meta = isMap(given) ? { ...given, rule_id: c.ruleId } : { rule_id: c.ruleId };
  }
  return c.meta;
}

/** A column as the statement sees it so far: an alias, else the event's column (`metadata` added). */
function lookupRoot(c: Ctx, name: string, plain: boolean): Value {
  const vars = c.vars;
  if (vars !== null && name in vars) return vars[name];
  if (name === 'metadata') return metadata(c);
  const event = c.event;
  const v = event[name];
  return v === undefined || plain || hasOwn.call(event, name) ? v : undefined;
}

function decodePayload(c: Ctx, raw: string | Buffer): Value {
  if (c.hasDecoded && c.decodedFrom === raw) return c.decoded;
  let v: Value;
  try {
    v = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8')) as Value;
  } catch {
    throw new RuleEvalError('decode_json_failed', 'the payload is not JSON');
  }
  c.hasDecoded = true;
  c.decodedFrom = raw;
  c.decoded = v;
  return v;
}

/** Sets a key on a plain object, also `__proto__` (as an own property, never the prototype). */
function setKey(m: ValueMap, key: string, v: Value): void {
  if (key === '__proto__') Object.defineProperty(m, key, { value: v, writable: true, enumerable: true, configurable: true });
  else m[key] = v;
}

function setVar(c: Ctx, key: string, v: Value): void {
  if (c.vars === null) c.vars = Object.create(null) as ValueMap;
  c.vars[key] = v;
}

/**
 * `container` with `val` put at `steps[i..]`, copying what it changes (the event and earlier
 * rows are never modified). As in EMQX: keys create or merge into maps, JSON text on the way is
 * decoded, an index into a non-list makes a one-element list, head prepends, tail appends, and an
 * index out of range changes nothing.
 */
function putIn(container: Value, steps: readonly Step[], i: number, val: Value, c: Ctx): Value {
  if (i === steps.length) return val;
  const s = steps[i] as Step;
  const base = isBinary(container) ? softDecode(container) : container;
  if (s.t === 0) {
    const m: ValueMap = isMap(base) ? { ...base } : {};
    const child = isMap(base) && hasOwn.call(base, s.key) ? base[s.key] : undefined;
    setKey(m, s.key, putIn(child, steps, i + 1, val, c));
    return m;
  }
  if (!Array.isArray(base)) return [putIn(undefined, steps, i + 1, val, c)];
  if (s.t === 3) return [putIn(undefined, steps, i + 1, val, c), ...base];
  if (s.t === 4) return [...base, putIn(undefined, steps, i + 1, val, c)];
  const idx = s.t === 1 ? s.i : (s.ev as Ev)(c);
  if (typeof idx !== 'number' || !Number.isInteger(idx) || idx === 0) return base;
  const pos = idx > 0 ? idx - 1 : base.length + idx;
  if (pos < 0 || pos >= base.length) return base;
  const copy = base.slice();
  copy[pos] = putIn(base[pos], steps, i + 1, val, c);
  return copy;
}

/** Puts a value at a target among the aliases (what later fields and WHERE see). */
function putVar(c: Ctx, t: CompiledTarget, v: Value): void {
  if (t.steps.length === 0) return setVar(c, t.root, v);
  let cur = lookupRoot(c, t.root, t.plain);
  if (t.payload && isBinary(cur)) cur = decodePayload(c, cur);
  setVar(c, t.root, putIn(cur, t.steps, 0, v, c));
}

/** Puts a value at a target of an output row. */
function putOut(c: Ctx, out: ValueMap, t: CompiledTarget, v: Value): void {
  if (t.steps.length === 0) return setKey(out, t.root, v);
  let cur = hasOwn.call(out, t.root) ? out[t.root] : undefined;
  if (t.payload && isBinary(cur)) cur = decodePayload(c, cur);
  setKey(out, t.root, putIn(cur, t.steps, 0, v, c));
}

/** `*`: every column (with `metadata`) and the aliases so far. */
function copyColumns(c: Ctx, out: ValueMap): void {
  const event = c.event;
  for (const k in event) setKey(out, k, event[k]);
  setKey(out, 'metadata', metadata(c));
  const vars = c.vars;
  if (vars !== null) for (const k in vars) setKey(out, k, vars[k]);
}

// ---------------------------------------------------------------------------------------------
// Operators

function typeName(v: Value): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'bytes';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'map' : typeof v;
}

function badArg(what: string, ...values: Value[]): RuleEvalError {
  return new RuleEvalError('bad_sql_function_argument', `${what} of ${values.map(typeName).join(' and ')}`);
}

function arith(op: ArithOp, a: Value, b: Value): Value {
  const nums = typeof a === 'number' && typeof b === 'number';
  switch (op) {
    case '+':
      if (nums) return a + b;
      if (isBinary(a) || isBinary(b)) return str(a) + str(b);
      throw badArg("'+'", a, b);
    case '-':
      if (nums) return a - b;
      throw badArg("'-'", a, b);
    case '*':
      if (nums) return a * b;
      throw badArg("'*'", a, b);
    case '/':
      if (!nums) throw badArg("'/'", a, b);
      if (b === 0) throw new RuleEvalError('badarith', 'division by zero');
      return a / b;
    default: {
      if (!nums || !Number.isInteger(a) || !Number.isInteger(b)) throw new RuleEvalError('bad_sql_function_argument', `${op} takes integers, not ${typeName(a)} and ${typeName(b)}`);
      if (b === 0) throw new RuleEvalError('badarith', 'division by zero');
      const r = op === 'div' ? Math.trunc(a / b) : a % b;
      return r === 0 ? 0 : r; // no -0
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** A string compared with a number, read as Erlang reads numbers (`12`, `-1.5`, `2.0e3`); else an error. */
function toNumber(v: string | Buffer): number {
  const s = typeof v === 'string' ? v : v.toString('utf8');
  let i = 0;
  const n = s.length;
  if (s[0] === '+' || s[0] === '-') i++;
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  let ok = i > intStart;
  if (ok && i < n) {
    ok = false;
    if (s[i] === '.') {
      const f = ++i;
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      ok = i > f;
      if (ok && i < n && (s[i] === 'e' || s[i] === 'E')) {
        i++;
        if (s[i] === '+' || s[i] === '-') i++;
        const e = i;
        while (i < n && isDigit(s.charCodeAt(i))) i++;
        ok = i > e;
      }
      ok = ok && i === n;
    }
  }
  if (!ok) throw new RuleEvalError('badarg', `cannot compare '${s.length > 40 ? `${s.slice(0, 40)}...` : s}' with a number`);
  return Number(s);
}

/** Code-point (= UTF-8 byte) order of two strings. */
function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const xs = x >= 0xd800 && x <= 0xdfff;
      const ys = y >= 0xd800 && y <= 0xdfff;
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
  }
  return a.length - b.length;
}

function asBuffer(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** Exact equality (Erlang's =:=; with JavaScript numbers also its ==): deep for lists and maps. */
export function exactEq(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a === 'string') return Buffer.isBuffer(b) && b.equals(Buffer.from(a, 'utf8'));
  if (typeof b === 'string') return Buffer.isBuffer(a) && a.equals(Buffer.from(b, 'utf8'));
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!exactEq(a[i], b[i])) return false;
    return true;
  }
  let size = 0;
  for (const k in a) {
    if (!hasOwn.call(b, k) || !exactEq(a[k], b[k])) return false;
    size++;
  }
  for (const _ in b) size--;
  return size === 0;
}

/** Erlang's term order: number < atom (booleans, null, undefined) < map < list < binary. */
function rank(v: Value): number {
  if (typeof v === 'number') return 0;
  if (v === undefined || v === null || typeof v === 'boolean') return 1;
  if (isBinary(v)) return 4;
  return Array.isArray(v) ? 3 : 2;
}

function termCompare(a: Value, b: Value): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 1:
      return compareStrings(String(a), String(b));
    case 4:
      return typeof a === 'string' && typeof b === 'string' ? compareStrings(a, b) : Buffer.compare(asBuffer(a as string | Buffer), asBuffer(b as string | Buffer));
    case 3: {
      const x = a as Value[];
      const y = b as Value[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const d = termCompare(x[i], y[i]);
        if (d !== 0) return d;
      }
      return x.length - y.length;
    }
    default: {
      const x = a as ValueMap;
      const y = b as ValueMap;
      const kx = Object.keys(x).sort(compareStrings);
      const ky = Object.keys(y).sort(compareStrings);
      if (kx.length !== ky.length) return kx.length - ky.length;
      for (let i = 0; i < kx.length; i++) {
        const d = compareStrings(kx[i] as string, ky[i] as string);
        if (d !== 0) return d;
      }
      for (const k of kx) {
        const d = termCompare(x[k], y[k]);
        if (d !== 0) return d;
      }
      return 0;
    }
  }
}

/**
 * A comparison as EMQX makes it: undefined equals only undefined (and nothing else compares with
 * it, `!=` included); a number against a string reads the string as a number; booleans and null
 * against a string compare as their names; `=~` matches a topic (left) against a filter (right).
 */
export function compare(op: CmpOp, a: Value, b: Value): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case '=':
        return a === b;
      case '!=':
        return a !== b;
      case '<':
        return a < b;
      case '>':
        return a > b;
      case '<=':
        return a <= b;
      case '>=':
        return a >= b;
      default:
        return false;
    }
  }
  if (a === undefined || b === undefined) return a === b && (op === '=' || op === '<=' || op === '>=');
  if (op === '=~') return isBinary(a) && isBinary(b) && topicMatches(str(b), str(a));
  if (typeof a === 'number') {
    if (isBinary(b)) b = toNumber(b);
  } else if (typeof b === 'number') {
    if (isBinary(a)) a = toNumber(a);
  } else if (isBinary(a)) {
    if (typeof b === 'boolean' || b === null) b = String(b);
  } else if (isBinary(b)) {
    if (typeof a === 'boolean' || a === null) a = String(a);
  }
  switch (op) {
    case '=':
      return exactEq(a, b);
    case '!=':
      return !exactEq(a, b);
    case '<':
      return termCompare(a, b) < 0;
    case '>':
      return termCompare(a, b) > 0;
    case '<=':
      return termCompare(a, b) <= 0;
    default:
      return termCompare(a, b) >= 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Compiling

function compileSteps(segs: readonly PathSeg[]): Step[] {
  return segs.map((s): Step => {
    if (s.k === 'key') return { t: 0, key: s.key, plain: isPlainKey(s.key), i: 0, ev: null };
    if (s.k === 'dyn') return { t: 2, key: '', plain: true, i: 0, ev: compileExpr(s.expr) };
    if (s.index === 'head') return { t: 3, key: '', plain: true, i: 0, ev: null };
    if (s.index === 'tail') return { t: 4, key: '', plain: true, i: 0, ev: null };
    return { t: 1, key: '', plain: true, i: s.index, ev: null };
  });
}

function compileTarget(t: Target): CompiledTarget {
  return { root: t.root, plain: isPlainKey(t.root), payload: t.root === 'payload', steps: compileSteps(t.segs) };
}

function readSteps(v: Value, steps: readonly Step[], c: Ctx): Value {
  for (let j = 0; j < steps.length; j++) {
    const s = steps[j] as Step;
    switch (s.t) {
      case 0:
        v = stepKey(v, s.key, s.plain);
        break;
      case 1:
        v = stepIndex(v, s.i);
        break;
      case 2:
        v = stepIndex(v, (s.ev as Ev)(c));
        break;
      default:
        return undefined; // [0] and [-0] name no element
    }
    if (v === undefined) return undefined;
  }
  return v;
}

function callError(name: string, e: unknown): RuleEvalError {
  if (e instanceof RuleEvalError) return e;
  return new RuleEvalError('bad_sql_function_argument', `${name}: ${e instanceof Error ? e.message : String(e)}`);
}

function compileCall(name: string, fn: RuleFunction, args: readonly Ev[]): Ev {
  const n = args.length;
  return (c) => {
    const values: Value[] = new Array<Value>(n);
    for (let i = 0; i < n; i++) values[i] = (args[i] as Ev)(c);
    try {
      return fn(values, c);
    } catch (e) {
      throw callError(name, e);
    }
  };
}

function compileExpr(e: Expr): Ev {
  switch (e.k) {
    case 'const': {
      const v = e.value;
      return () => v;
    }
    case 'var': {
      const name = e.name;
      const plain = isPlainKey(name);
      return (c) => lookupRoot(c, name, plain);
    }
    case 'path': {
      const root = e.root;
      const plain = isPlainKey(root);
      const steps = compileSteps(e.segs);
      if (root === 'payload') {
        return (c) => {
          let v = lookupRoot(c, root, plain);
          if (isBinary(v)) v = decodePayload(c, v);
          return readSteps(v, steps, c);
        };
      }
      return (c) => readSteps(lookupRoot(c, root, plain), steps, c);
    }
    case 'list': {
      const items = e.items.map(compileExpr);
      const n = items.length;
      return (c) => {
        const out: Value[] = new Array<Value>(n);
        for (let i = 0; i < n; i++) out[i] = (items[i] as Ev)(c);
        return out;
      };
    }
    case 'range': {
      const values: number[] = [];
      for (let i = e.from; i <= e.to; i++) values.push(i);
      return () => values.slice();
    }
    case 'slice': {
      const of = compileExpr(e.of);
      const { from, to } = e;
      return (c) => {
        let v = of(c);
        if (isBinary(v)) v = softDecode(v);
        if (!Array.isArray(v)) throw new RuleEvalError('bad_sql_function_argument', `[${from}..${to}] of ${typeName(v)}, not a list`);
        const len = v.length;
        const b = Math.max(from > 0 ? from : len + from + 1, 1);
        const end = Math.min(to > 0 ? to : len + to + 1, len);
        return end >= b ? v.slice(b - 1, end) : [];
      };
    }
    case 'neg': {
      const x = compileExpr(e.expr);
      return (c) => {
        const v = x(c);
        if (typeof v !== 'number') throw badArg("'-'", v);
        return -v;
      };
    }
    case 'arith': {
      const { op } = e;
      const l = compileExpr(e.left);
      const r = compileExpr(e.right);
      return (c) => arith(op, l(c), r(c));
    }
    case 'cmp': {
      const { op } = e;
      const l = compileExpr(e.left);
      const r = compileExpr(e.right);
      return (c) => compare(op, l(c), r(c));
    }
    case 'and': {
      const l = compileExpr(e.left);
      const r = compileExpr(e.right);
      return (c) => l(c) === true && r(c) === true;
    }
    case 'or': {
      const l = compileExpr(e.left);
      const r = compileExpr(e.right);
      return (c) => l(c) === true || r(c) === true;
    }
    case 'not': {
      const x = compileExpr(e.expr);
      return (c) => x(c) === false; // NOT of a non-boolean is false
    }
    case 'in': {
      const x = compileExpr(e.expr);
      const items = e.items.map(compileExpr);
      const negated = e.negated;
      return (c) => {
        const v = x(c);
        for (let i = 0; i < items.length; i++) if (exactEq(v, (items[i] as Ev)(c))) return !negated;
        return negated;
      };
    }
    case 'case': {
      const whens = e.whens.map((w) => ({ when: compileExpr(w.when), then: compileExpr(w.then) }));
      const otherwise = e.else ? compileExpr(e.else) : null;
      if (e.on) {
        const on = compileExpr(e.on);
        return (c) => {
          const v = on(c);
          for (let i = 0; i < whens.length; i++) {
            const w = whens[i] as { when: Ev; then: Ev };
            if (exactEq(v, w.when(c))) return w.then(c);
          }
          return otherwise ? otherwise(c) : undefined;
        };
      }
      return (c) => {
        for (let i = 0; i < whens.length; i++) {
          const w = whens[i] as { when: Ev; then: Ev };
          if (w.when(c) === true) return w.then(c);
        }
        return otherwise ? otherwise(c) : undefined;
      };
    }
    case 'call':
      return compileCall(e.name, e.spec.fn, e.args.map(compileExpr));
  }
}

function compileField(f: Field): Run {
  if (f.k === 'star') return copyColumns;
  const ev = compileExpr(f.expr);
  const t = compileTarget(f.target);
  if (t.steps.length === 0) {
    const root = t.root;
    return (c, out) => {
      const v = ev(c);
      setVar(c, root, v);
      setKey(out, root, v);
    };
  }
  return (c, out) => {
    const v = ev(c);
    putVar(c, t, v);
    putOut(c, out, t, v);
  };
}

/** Compiles a parsed statement to closures; {@link evaluate} runs them. */
export function compileStatement(stmt: Statement): void {
  let fields = stmt.fields;
  let collect: Plan['collect'] = null;
  if (stmt.kind === 'foreach') {
    const last = fields[fields.length - 1];
    if (!last || last.k !== 'field') throw new Error('FOREACH needs an expression');
    fields = fields.slice(0, -1);
    collect = {
      ev: compileExpr(last.expr),
      field: compileTarget(last.target),
      item: last.aliased ? compileTarget(last.target) : compileTarget({ root: 'item', segs: [] }),
    };
  }
  plans.set(stmt, {
    fields: fields.map(compileField),
    collect,
    doFields: stmt.kind === 'foreach' && stmt.doFields.length > 0 ? stmt.doFields.map(compileField) : null,
    incase: stmt.incase ? compileExpr(stmt.incase) : null,
    where: stmt.where ? compileExpr(stmt.where) : null,
  });
}

// ---------------------------------------------------------------------------------------------
// Running

function runForeach(plan: Plan, collect: NonNullable<Plan['collect']>, c: Ctx): ValueMap[] | undefined {
  const scratch: ValueMap = {};
  for (const run of plan.fields) run(c, scratch);
  const value = collect.ev(c);
  putVar(c, collect.field, value);
  if (plan.where !== null && plan.where(c) !== true) return undefined;
  let items = value;
  if (isBinary(items)) items = softDecode(items);
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const rows: ValueMap[] = [];
  const { item: itemTarget } = collect;
  for (const item of items) {
    c.vars = null; // items see the columns and their item, not the FOREACH aliases (EMQX)
    putVar(c, itemTarget, item);
    if (plan.incase !== null && plan.incase(c) !== true) continue;
    const row: ValueMap = {};
    if (plan.doFields !== null) {
      for (const run of plan.doFields) run(c, row);
    } else {
      const event = c.event;
      for (const k in event) setKey(row, k, event[k]);
      setKey(row, 'metadata', metadata(c));
      putOut(c, row, itemTarget, item);
    }
    rows.push(row);
  }
  return rows.length > 0 ? rows : undefined;
}

/**
 * Runs a statement on an event's columns. SELECT gives one row, FOREACH one per item; undefined
 * is no result (WHERE not true, FOREACH of a non-list or an empty one, every item filtered out:
 * EMQX's failed.no_result). Throws RuleEvalError for an evaluation error (failed.exception).
 */
export function evaluate(stmt: Statement, event: ValueMap, opts: EvalOptions): ValueMap[] | undefined {
  const plan = plans.get(stmt);
  if (!plan) throw new TypeError('the statement was not made by parseSql');
  const c = new Ctx(event, opts.ruleId);
  if (plan.collect !== null) return runForeach(plan, plan.collect, c);
  const out: ValueMap = {};
  for (const run of plan.fields) run(c, out);
  if (plan.where !== null && plan.where(c) !== true) return undefined;
  return [out];
}

/**
 * A compiled expression outside any statement: `run(columns)` evaluates it over `columns` as a
 * field of a statement would (paths, functions, payload decoding); `ruleId` is what functions see.
 * Throws RuleEvalError as a statement does.
 */
export function compileExpression(e: Expr, ruleId = ''): (columns: ValueMap) => Value {
  const ev = compileExpr(e);
  return (columns) => ev(new Ctx(columns, ruleId));
}

/**
 * Whether a FROM entry matches the event's source: a message's topic against a topic filter
 * (MQTT rules), an event or source name (`$events/...`, `$sources/...`, `$bridges/...`) by equality.
 */
export function fromMatches(stmt: Statement, source: string): boolean {
  for (const entry of stmt.from) {
    if (entry.charCodeAt(0) === 0x24 && EVENT_PREFIXES.some((p) => entry.startsWith(p))) {
      if (entry === source) return true;
    } else if (topicMatches(entry, source)) return true;
  }
  return false;
}
