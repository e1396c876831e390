import { isUtf8 } from 'node:buffer';
import { fixed, float2str, isMap, str, textOrBytes, type Value } from '../value';
import { binOut, bytes, fail, int, num, show, spec, text, toMap, tryJson, type FunctionTable } from './args';

// Erlang's binary_to_integer and binary_to_float syntax: a float needs digits on both sides of the point.
const INTEGER_TEXT = /^[+-]?[0-9]+$/;
const FLOAT_TEXT = /^[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?$/;
const HEX_TEXT = /^[0-9a-fA-F]*$/;

/** A number from text the way Erlang parses it (integer syntax, then float syntax). */
function parseNumber(s: string): number | undefined {
  if (INTEGER_TEXT.test(s) || FLOAT_TEXT.test(s)) return Number(s);
  return undefined;
}

/** str/1: text as it is (bytes kept), everything else as value.ts `str` formats it. */
export function toStr(v: Value): Value {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return textOrBytes(v);
  return str(v);
}

/** str/1 as text that must be valid Unicode (str_utf8, str_utf16_le). */
function unicodeText(name: string, v: Value): string {
  if (Buffer.isBuffer(v)) {
    if (!isUtf8(v)) fail(name, 'the binary is not valid UTF-8');
    return v.toString('utf8');
  }
  return typeof v === 'string' ? v : str(v);
}

/** EMQX's int/1: integers as they are, floats rounded down, booleans 1/0, numeric text parsed. */
export function toInt(v: Value): number {
  if (typeof v === 'number') return Number.isInteger(v) ? v : Math.floor(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const n = parseNumber(text('int', v));
    if (n !== undefined) return Math.floor(n);
  }
  return fail('int', `cannot convert ${show(v)} to an integer`);
}

/** EMQX's float/1: numbers as they are, numeric text parsed (booleans are an error). */
export function toFloat(v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const n = parseNumber(text('float', v));
    if (n !== undefined) return n;
  }
  return fail('float', `cannot convert ${show(v)} to a float`);
}

/** EMQX's bool/1: true, 'true' and 1 are true; false, 'false' and 0 are false. */
export function toBool(v: Value): boolean {
  if (v === true || v === 'true' || v === 1) return true;
  if (v === false || v === 'false' || v === 0) return false;
  if (Buffer.isBuffer(v)) {
    const s = v.toString('latin1');
    if (s === 'true' || s === 'false') return s === 'true';
  }
  return fail('bool', `cannot convert ${show(v)} to a boolean`);
}

/** Decimals for float/2 and float2str/2 (Erlang accepts 0..253). */
function decimals(name: string, v: Value, min: number): number {
  const d = int(name, v);
  if (d < min || d > 253) fail(name, `decimals must be ${min}..253, got ${d}`);
  return d;
}

/** Upper-case hex of bytes (bin2hexstr). */
export function hexUpper(b: Buffer): string {
  return b.toString('hex').toUpperCase();
}

/** hexstr2bin: hex digits to bytes; an odd count reads as if a 0 led. */
function hexToBin(name: string, s: string): Value {
  if (!HEX_TEXT.test(s)) fail(name, `not a hex string: ${show(s)}`);
  return binOut(Buffer.from(s.length % 2 === 1 ? `0${s}` : s, 'hex'));
}

/** Is an array, a map or JSON text of one empty? (is_empty/1) */
function isEmpty(v: Value): boolean {
  let x = v;
  if (typeof x === 'string' || Buffer.isBuffer(x)) x = tryJson(typeof x === 'string' ? x : x.toString('utf8'));
  if (Array.isArray(x)) return x.length === 0;
  if (isMap(x)) {
    for (const _k in x) return false;
    return true;
  }
  return fail('is_empty', `expected an array or a map, got ${show(v)}`);
}

/** Type conversions (str, int, float2str, bin2hexstr...) and type checks (is_null, is_int...). */
export const CONVERT_FUNCTIONS: FunctionTable = {
  str: spec([1], (args) => toStr(args[0])),
  str_utf8: spec([1], (args) => unicodeText('str_utf8', args[0])),
  str_utf16_le: spec([1], (args) => binOut(Buffer.from(unicodeText('str_utf16_le', args[0]), 'utf16le'))),
  bool: spec([1], (args) => toBool(args[0])),
  int: spec([1], (args) => toInt(args[0])),
  float: spec([1, 2], (args) => {
    const f = toFloat(args[0]);
    if (args.length === 1) return f;
    return Number(fixed(f, decimals('float', args[1], 1)));
  }),
  float2str: spec([2], (args) => float2str(num('float2str', args[0]), decimals('float2str', args[1], 0))),
  map: spec([1], (args) => toMap('map', args[0])),
  bin2hexstr: spec([1, 2], (args) => {
    const hex = hexUpper(bytes('bin2hexstr', args[0]));
    return args.length === 1 ? hex : text('bin2hexstr', args[1]) + hex;
  }),
  hexstr2bin: spec([1, 2], (args) => {
    const s = text('hexstr2bin', args[0]);
    if (args.length === 1) return hexToBin('hexstr2bin', s);
    const prefix = text('hexstr2bin', args[1]);
    if (!s.startsWith(prefix)) fail('hexstr2bin', `binary_prefix_unmatch: ${show(s)} does not start with ${show(prefix)}`);
    return hexToBin('hexstr2bin', s.slice(prefix.length));
  }),
  sqlserver_bin2hexstr: spec([1], (args) => `0x${hexUpper(bytes('sqlserver_bin2hexstr', args[0]))}`),

  is_null: spec([1], (args) => args[0] === undefined),
  is_null_var: spec([1], (args) => args[0] === undefined || args[0] === null),
  is_not_null: spec([1], (args) => args[0] !== undefined),
  is_not_null_var: spec([1], (args) => args[0] !== undefined && args[0] !== null),
  is_str: spec([1], (args) => typeof args[0] === 'string' || Buffer.isBuffer(args[0])),
  is_bool: spec([1], (args) => typeof args[0] === 'boolean'),
  is_int: spec([1], (args) => Number.isInteger(args[0])),
  is_float: spec([1], (args) => typeof args[0] === 'number' && !Number.isInteger(args[0])),
  is_num: spec([1], (args) => typeof args[0] === 'number'),
  is_map: spec([1], (args) => isMap(args[0])),
  is_array: spec([1], (args) => Array.isArray(args[0])),
  is_empty: spec([1], (args) => isEmpty(args[0])),
};
