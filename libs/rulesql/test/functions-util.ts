import { strict as assert } from 'node:assert';
import { lookupFunction } from '../src/functions';
import { RuleEvalError, type Value, type ValueMap } from '../src/value';

/** Calls a rule function as the SQL evaluator does: arity checked first, then fn(args, ctx). */
export function callIn(event: ValueMap, name: string, ...args: Value[]): Value {
  const spec = lookupFunction(name);
  assert.ok(spec, `no function ${name}`);
  const a = spec.arity;
  assert.ok('min' in a ? args.length >= a.min : a.includes(args.length), `${name} does not take ${args.length} arguments`);
  return spec.fn(args, { event, ruleId: 'rule-1' });
}

/** A function called with no event columns. */
export function call(name: string, ...args: Value[]): Value {
  return callIn({}, name, ...args);
}

/** Asserts that `f` raises the rule-evaluation error with EMQX's reason word. */
export function fails(f: () => unknown, reason = 'bad_sql_function_argument'): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof RuleEvalError, `not a RuleEvalError: ${String(e)}`);
    assert.equal(e.reason, reason);
    assert.equal(e.code, 'SQL_EVAL_ERROR');
    return true;
  });
}

/** Bytes from hex. */
export function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}

/** The bytes of a text-or-binary result (the value model makes valid UTF-8 a string). */
export function bytesOf(v: Value): Buffer {
  assert.ok(typeof v === 'string' || Buffer.isBuffer(v), `not text or bytes: ${String(v)}`);
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** Asserts a float result equal to the expected one within a few units in the last place (libm differences). */
export function near(actual: Value, expected: number): void {
  assert.equal(typeof actual, 'number');
  const a = actual as number;
  assert.ok(Math.abs(a - expected) <= 4 * Number.EPSILON * Math.max(1, Math.abs(expected)), `${a} is not ${expected}`);
}
