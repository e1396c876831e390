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
 * are, Buffers decoded as UTF-8, numbers in their shortest form, booleans `true`/`false`,
 * maps and arrays as JSON, undefined as `undefined` and null as `null`.
 */
export function str(v: Value): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return jsonEncode(v);
}

/** JSON text of a value; Buffers are encoded as their UTF-8 text, undefined map values are null. */
export function jsonEncode(v: Value): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === undefined) return null;
    if (x && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) {
      return Buffer.from((x as { data: number[] }).data).toString('utf8');
    }
    return x;
  }) ?? 'null';
}

/** Text for bytes when they are valid UTF-8, else the Buffer itself (how payloads enter rules). */
export function textOrBytes(b: Buffer): string | Buffer {
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD') ? s : b;
}
