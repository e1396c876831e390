/**
 * A tiny typed schema for configuration: every leaf has a type, a default and a one-line doc.
 * `Infer<typeof schema>` gives the config type, so defaults, validation and types live in one place.
 */

import { ValidationError } from './errors';

export interface Bind {
  host: string;
  port: number;
}

interface LeafBase<T> {
  readonly kind: 'leaf';
  readonly default: T;
  readonly doc: string;
  /** Converts a raw value (from a file or an environment string) or returns an error message. */
  parse(raw: unknown): T | ConfigProblem;
}

export class ConfigProblem {
  constructor(readonly message: string) {}
}

export type Leaf<T> = LeafBase<T>;
export type SchemaNode = Leaf<unknown> | { readonly [key: string]: SchemaNode };
export type Infer<S> = S extends Leaf<infer T> ? T : { readonly [K in keyof S]: Infer<S[K]> };

export function isLeaf(node: SchemaNode): node is Leaf<unknown> {
  return (node as Leaf<unknown>).kind === 'leaf';
}

function leaf<T>(def: T, doc: string, parse: (raw: unknown) => T | ConfigProblem): Leaf<T> {
  return { kind: 'leaf', default: def, doc, parse };
}

export function str(def: string, doc: string, opts: { nonEmpty?: boolean } = {}): Leaf<string> {
  return leaf(def, doc, (raw) => {
    if (typeof raw !== 'string') return new ConfigProblem('expected a string');
    if (opts.nonEmpty && raw.length === 0) return new ConfigProblem('must not be empty');
    return raw;
  });
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseNumber(raw: unknown, units?: Record<string, number>, defaultUnit = ''): number | ConfigProblem {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return new ConfigProblem('expected a number');
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  if (!m) return new ConfigProblem(`expected a number, got "${raw}"`);
  const unit = (m[2] ?? '').toLowerCase() || defaultUnit;
  const factor = units ? units[unit] : unit === '' ? 1 : undefined;
  if (factor === undefined) return new ConfigProblem(`unknown unit "${m[2]}" in "${raw}"`);
  return Number(m[1]) * factor;
}

function ranged(n: number | ConfigProblem, min: number, max: number): number | ConfigProblem {
  if (n instanceof ConfigProblem) return n;
  if (!Number.isInteger(n)) return new ConfigProblem(`expected a whole number, got ${n}`);
  if (n < min || n > max) return new ConfigProblem(`must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function int(def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): Leaf<number> {
  return leaf(def, doc, (raw) => ranged(parseNumber(raw), min, max));
}

/** A byte size: a number of bytes or "64KB", "1MB", "1GB". */
export function bytes(def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): Leaf<number> {
  return leaf(def, doc, (raw) => ranged(parseNumber(raw, SIZE_UNITS, 'b'), min, max));
}

/** A duration in milliseconds: a number of ms or "500ms", "30s", "2h", "7d". */
export function duration(def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): Leaf<number> {
  return leaf(def, doc, (raw) => ranged(parseNumber(raw, TIME_UNITS, 'ms'), min, max));
}

export function float(def: number, doc: string, min: number, max: number): Leaf<number> {
  return leaf(def, doc, (raw) => {
    const n = parseNumber(raw);
    if (n instanceof ConfigProblem) return n;
    if (n < min || n > max) return new ConfigProblem(`must be between ${min} and ${max}, got ${n}`);
    return n;
  });
}

export function bool(def: boolean, doc: string): Leaf<boolean> {
  return leaf(def, doc, (raw) => {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1' || raw === 'on') return true;
    if (raw === 'false' || raw === '0' || raw === 'off') return false;
    return new ConfigProblem(`expected true or false, got ${JSON.stringify(raw)}`);
  });
}

export function oneOf<const T extends string>(values: readonly T[], def: T, doc: string): Leaf<T> {
  return leaf(def, doc, (raw) =>
    typeof raw === 'string' && (values as readonly string[]).includes(raw)
      ? (raw as T)
      : new ConfigProblem(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`),
  );
}

/** A listen address: "host:port", "[v6]:port" or a bare port (all interfaces). */
export function bind(def: string, doc: string): Leaf<Bind> {
  const parse = (raw: unknown): Bind | ConfigProblem => {
    if (typeof raw === 'number') raw = String(raw);
    if (typeof raw !== 'string') return new ConfigProblem('expected "host:port"');
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d+)$/.exec(raw) ?? /^()()(\d+)$/.exec(raw);
    if (!m) return new ConfigProblem(`expected "host:port", got "${raw}"`);
    const port = Number(m[3]);
    if (port > 65535) return new ConfigProblem(`port must be 0-65535, got ${port}`);
    return { host: m[1] || m[2] || '0.0.0.0', port };
  };
  const d = parse(def);
  if (d instanceof ConfigProblem) throw new ValidationError('INVALID_ARGUMENT', `bad default bind ${def}`);
  return leaf(d, doc, parse);
}

/** Environment variables give structured values as JSON text; files give them parsed. */
function fromJsonText(raw: unknown, what: 'array' | 'object'): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return new ConfigProblem(`expected a JSON ${what}`);
  }
}

/**
 * A list of records (e.g. rewrite rules): a JSON array in a file, or a JSON string in an
 * environment variable. `item` validates one element and returns it typed, or a problem.
 */
export function list<T>(def: T[], doc: string, item: (raw: unknown, index: number) => T | ConfigProblem): Leaf<T[]> {
  return leaf(def, doc, (given) => {
    const raw = fromJsonText(given, 'array');
    if (raw instanceof ConfigProblem) return raw;
    if (!Array.isArray(raw)) return new ConfigProblem('expected an array');
    const out: T[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = item(raw[i], i);
      if (v instanceof ConfigProblem) return new ConfigProblem(`item ${i}: ${v.message}`);
      out.push(v);
    }
    return out;
  });
}

/** A free-form JSON object (e.g. plugins' own sections): an object in a file, or a JSON string in an environment variable. */
export function jsonObject(def: Record<string, unknown>, doc: string): Leaf<Record<string, unknown>> {
  return leaf(def, doc, (given) => {
    const raw = fromJsonText(given, 'object');
    if (raw instanceof ConfigProblem) return raw;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('expected an object');
    return raw as Record<string, unknown>;
  });
}

/** Checks that `raw` is an object whose listed fields have the given primitive types. */
export function record<T>(raw: unknown, fields: Record<string, 'string' | 'number' | 'boolean' | 'string?' | 'number?' | 'boolean?'>): T | ConfigProblem {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('expected an object');
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!(key in fields)) return new ConfigProblem(`unknown field "${key}"`);
  for (const [key, type] of Object.entries(fields)) {
    const optional = type.endsWith('?');
    const want = type.replace('?', '');
    if (obj[key] === undefined) {
      if (!optional) return new ConfigProblem(`missing field "${key}"`);
    } else if (typeof obj[key] !== want) return new ConfigProblem(`field "${key}" must be a ${want}`);
  }
  return obj as T;
}

/**
 * A rate: `amount` per `periodMs`, written "1000/s", "10MB/s", "100/m", "500/10s" or "infinity"
 * (no limit). The amount takes the size units of `bytes` (for byte rates), the period the time
 * units of `duration`; a bare number is per second. Serialises as it was written.
 */
export class Rate {
  constructor(
    readonly amount: number,
    readonly periodMs: number,
    readonly text: string,
  ) {}

  /** No limit. */
  get infinite(): boolean {
    return this.amount === Infinity;
  }

  /** Units per millisecond (Infinity for no limit). */
  get perMs(): number {
    return this.amount / this.periodMs;
  }

  toJSON(): string {
    return this.text;
  }
}

/** No limit: what a rate key defaults to. */
export const INFINITE_RATE = new Rate(Infinity, 1000, 'infinity');

/** Parses a rate (see Rate); a problem names what is wrong. */
export function parseRate(raw: unknown): Rate | ConfigProblem {
  if (typeof raw === 'number') return raw > 0 && Number.isFinite(raw) ? new Rate(raw, 1000, `${raw}/s`) : new ConfigProblem(`a rate must be positive, got ${raw}`);
  if (typeof raw !== 'string') return new ConfigProblem('expected a rate such as "1000/s", "10MB/s" or "infinity"');
  const text = raw.trim();
  if (text.toLowerCase() === 'infinity') return INFINITE_RATE;
  if (/^\d+(?:\.\d+)?$/.test(text)) return parseRate(Number(text));
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*\/\s*(\d+(?:\.\d+)?)?\s*([a-zA-Z]+)$/.exec(text);
  if (!m) return new ConfigProblem(`expected a rate such as "1000/s", "10MB/s", "100/m" or "infinity", got "${raw}"`);
  const size = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (size === undefined) return new ConfigProblem(`unknown size unit "${m[2]}" in "${raw}"`);
  const time = TIME_UNITS[(m[4] ?? '').toLowerCase()];
  if (time === undefined) return new ConfigProblem(`unknown time unit "${m[4]}" in "${raw}"`);
  const amount = Number(m[1]) * size;
  const periodMs = Number(m[3] ?? 1) * time;
  if (!(amount > 0) || !(periodMs > 0)) return new ConfigProblem(`a rate must be positive, got "${raw}"`);
  return new Rate(amount, periodMs, text);
}

/** A rate key: "1000/s", "10MB/s", "100/m", "infinity" (see Rate). */
export function rate(def: string, doc: string): Leaf<Rate> {
  const d = parseRate(def);
  if (d instanceof ConfigProblem) throw new ValidationError('INVALID_ARGUMENT', `bad default rate ${def}: ${d.message}`);
  return leaf(d, doc, parseRate);
}

/** A size given absolutely ("512MB", bytes) or as a fraction of some limit ("0.9"). */
export type SizeOrFraction = { readonly bytes: number } | { readonly fraction: number };

/**
 * A size or a fraction: a number with a size unit ("512MB", "1KB", "100B") is bytes; a bare number
 * in (0, 1] is a fraction ("0.9"); a bare number above 1 is bytes.
 */
export function sizeOrFraction(def: string, doc: string): Leaf<SizeOrFraction> {
  const parse = (raw: unknown): SizeOrFraction | ConfigProblem => {
    const unit = typeof raw === 'string' ? /[a-zA-Z]\s*$/.test(raw) : false;
    const n = parseNumber(raw, SIZE_UNITS, 'b');
    if (n instanceof ConfigProblem) return n;
    if (!(n > 0)) return new ConfigProblem(`must be positive, got ${JSON.stringify(raw)}`);
    if (!unit && n <= 1) return { fraction: n };
    return Number.isInteger(n) ? { bytes: n } : new ConfigProblem(`expected a whole number of bytes, got ${n}`);
  };
  const d = parse(def);
  if (d instanceof ConfigProblem) throw new ValidationError('INVALID_ARGUMENT', `bad default ${def}: ${d.message}`);
  return leaf(d, doc, parse);
}
