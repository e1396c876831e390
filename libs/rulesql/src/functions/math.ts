import { RuleEvalError, str, type Value } from '../value';
import { byteMode, fail, int, num, show, spec, textOut, valueEquals, type FunctionTable } from './args';

/** Erlang's badarith (division by zero, a math domain error, an overflow). */
function badarith(name: string, detail: string): never {
  throw new RuleEvalError('badarith', `${name}: ${detail}`);
}

/** A float result of a math function; NaN or an infinity is EMQX's badarith. */
function finite(name: string, x: number, r: number): number {
  if (!Number.isFinite(r)) badarith(name, `no finite result for ${x}`);
  return r;
}

/** A math/1 function over any number, giving a float (acos(0.5), exp(1)...). */
function unary(name: string, f: (x: number) => number) {
  return spec([1], (args) => {
    const x = num(name, args[0]);
    return finite(name, x, f(x));
  });
}

/** Erlang's round/1: halves away from zero (round(-2.5) is -3, Math.round gives -2). */
function erlRound(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * EMQX's `+`: numbers add; when either side is text the two are concatenated, the other side
 * converted as str/1 does (`'a' + 1` is `a1`). Bytes stay bytes.
 */
export function plus(a: Value, b: Value): Value {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const aText = typeof a === 'string' || Buffer.isBuffer(a);
  const bText = typeof b === 'string' || Buffer.isBuffer(b);
  if (!aText && !bText) fail('+', `cannot add ${show(a)} and ${show(b)}`);
  return concatValues([a, b]);
}

/** concat/1,2 and `+` on text: every value as str/1 gives it, joined; raw bytes kept as bytes. */
export function concatValues(values: readonly Value[]): string | Buffer {
  let raw = false;
  for (const v of values) if (byteMode(v)) raw = true;
  if (!raw) {
    let out = '';
    for (const v of values) out += typeof v === 'string' ? v : str(v);
    return out;
  }
  const parts = values.map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(str(v), 'utf8')));
  return textOut(Buffer.concat(parts).toString('latin1'), true);
}

function numbers(name: string, args: Value[]): [number, number] {
  return [num(name, args[0]), num(name, args[1])];
}

/** Arithmetic operators as functions ('+', '-', '*', '/', div, mod, eq) and the math functions. */
export const MATH_FUNCTIONS: FunctionTable = {
  '+': spec([2], (args) => plus(args[0], args[1])),
  '-': spec([2], (args) => {
    const [a, b] = numbers('-', args);
    return a - b;
  }),
  '*': spec([2], (args) => {
    const [a, b] = numbers('*', args);
    return a * b;
  }),
  '/': spec([2], (args) => {
    const [a, b] = numbers('/', args);
    if (b === 0) badarith('/', 'division by zero');
    return a / b;
  }),
  div: spec([2], (args) => {
    const a = int('div', args[0]);
    const b = int('div', args[1]);
    if (b === 0) badarith('div', 'division by zero');
    return Math.trunc(a / b);
  }),
  mod: spec([2], (args) => {
    const a = int('mod', args[0]);
    const b = int('mod', args[1]);
    if (b === 0) badarith('mod', 'division by zero');
    return a % b;
  }),
  eq: spec([2], (args) => valueEquals(args[0], args[1])),

  abs: spec([1], (args) => Math.abs(num('abs', args[0]))),
  acos: unary('acos', Math.acos),
  acosh: unary('acosh', Math.acosh),
  asin: unary('asin', Math.asin),
  asinh: unary('asinh', Math.asinh),
  atan: unary('atan', Math.atan),
  atanh: unary('atanh', Math.atanh),
  ceil: spec([1], (args) => Math.ceil(num('ceil', args[0]))),
  cos: unary('cos', Math.cos),
  cosh: unary('cosh', Math.cosh),
  exp: unary('exp', Math.exp),
  floor: spec([1], (args) => Math.floor(num('floor', args[0]))),
  fmod: spec([2], (args) => {
    const [a, b] = numbers('fmod', args);
    if (b === 0) badarith('fmod', 'division by zero');
    return a % b;
  }),
  log: unary('log', (x) => (x > 0 ? Math.log(x) : NaN)),
  log10: unary('log10', (x) => (x > 0 ? Math.log10(x) : NaN)),
  log2: unary('log2', (x) => (x > 0 ? Math.log2(x) : NaN)),
  power: spec([2], (args) => {
    const [a, b] = numbers('power', args);
    return finite('power', a, a ** b);
  }),
  round: spec([1], (args) => erlRound(num('round', args[0]))),
  sin: unary('sin', Math.sin),
  sinh: unary('sinh', Math.sinh),
  sqrt: unary('sqrt', Math.sqrt),
  tan: unary('tan', Math.tan),
  tanh: unary('tanh', Math.tanh),
  random: spec([0], () => Math.random()),
};
