import { ValidationError } from '@tributary/common';

/**
 * What rule SQL, its functions and templates compute with. EMQX's terms map onto JavaScript:
 * - `undefined` is EMQX's undefined (a missing field); `null` is a JSON null;
 * - text is a `string`; bytes that are not valid UTF-8 (a binary payload, gzip's output) are a
 *   `Buffer`, and every function taking text also takes a Buffer (and compares by bytes);
 * - numbers are JavaScript numbers: an integral float (1.0) is indistinguishable from 1, so
 *   `is_float(1.0)` is false here (documented in docs/rules.md);
 * - arrays are arrays; maps are plain objects with string keys (never class instances).
 */
export type Value = undefined | null | boolean | number | string | Buffer | Value[] | ValueMap;
export interface ValueMap {
  [key: string]: Value;
}

export function isMap(v: Value): v is ValueMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/**
 * An evaluation error: counted as the rule's `failed.exception`, reported by the rule-test API
 * as 400. `reason` is EMQX's reason word (`bad_sql_function_argument`, `decode_json_failed`,
 * `sql_function_provider_module_not_loaded`, ...), which is also the start of the message.
 */
export class RuleEvalError extends ValidationError {
  constructor(
    readonly reason: string,
    detail?: string,
  ) {
    super('SQL_EVAL_ERROR', detail ? `${reason}: ${detail}` : reason);
  }
}

/**
 * EMQX's `str/1` conversion, also what `+` concatenation and templates use: strings as they
 * are, Buffers decoded as UTF-8, integers in full, other numbers as EMQX prints floats (at most
 * 10 decimals, trailing zeros dropped: `0.30000000004` is `0.3`), booleans `true`/`false`, maps
 * and arrays as JSON, undefined as `undefined` and null as `null`.
 */
export function str(v: Value): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? String(v) : BigInt(v).toString();
    return Number.isFinite(v) ? float2str(v, 10) : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan';
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return jsonEncode(v);
}

/**
 * The bytes of a Buffer as a JSON.stringify replacer sees it (Buffer.toJSON ran first:
 * `{type: 'Buffer', data: [...]}`), or undefined for any other value.
 */
export function stringifiedBuffer(x: unknown): Buffer | undefined {
  return x && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data) ? Buffer.from((x as { data: number[] }).data) : undefined;
}

/** JSON text of a value; Buffers are encoded as their UTF-8 text, undefined map values are null. */
export function jsonEncode(v: Value): string {
  return JSON.stringify(v, (_k, x: unknown) => (x === undefined ? null : (stringifiedBuffer(x)?.toString('utf8') ?? x))) ?? 'null';
}

/** Text for bytes when they are valid UTF-8, else the Buffer itself (how payloads enter rules). */
export function textOrBytes(b: Buffer): string | Buffer {
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : b;
}

/**
 * EMQX's `float2str(F, Decimals)` (Erlang `float_to_binary(F, [{decimals, D}, compact])`): the
 * exact decimal expansion of the double rounded to `decimals` places, trailing zeros dropped but
 * one digit kept after the point (`20.0`); no point at all when `decimals` is 0.
 */
export function float2str(x: number, decimals: number): string {
  const s = fixed(x, decimals);
  if (decimals === 0) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 0x30 /* 0 */ && s.charCodeAt(end - 2) !== 0x2e /* . */) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** `x` with exactly `decimals` places, from its exact binary value (toFixed's limits lifted). */
export function fixed(x: number, decimals: number): string {
  if (Math.abs(x) >= 1e21) return BigInt(x).toString() + (decimals > 0 ? '.' + '0'.repeat(decimals) : '');
  if (decimals <= 100) return x.toFixed(decimals);
  // Past toFixed's 100 places: x = m * 2^e exactly, so x * 10^d = m * 10^d / 2^-e, rounded half up.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  let e = exp - 1075;
  if (exp === 0) e = -1074;
  else m |= 1n << 52n;
  let n = m * 10n ** BigInt(decimals);
  if (e >= 0) n <<= BigInt(e);
  else {
    const shift = BigInt(-e);
    const q = n >> shift;
    n = (n - (q << shift)) * 2n >= 1n << shift ? q + 1n : q;
  }
  const digits = n.toString().padStart(decimals + 1, '0');
  const sign = x < 0 ? '-' : '';
  return `${sign}${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}
