import type { Value } from '../value';
import { BoundedCache, fail, int, option, show, spec, text, type FunctionTable } from './args';

type Unit = 'second' | 'millisecond' | 'microsecond' | 'nanosecond';

const UNITS: readonly Unit[] = ['second', 'millisecond', 'microsecond', 'nanosecond'];
const PER_SECOND: Readonly<Record<Unit, bigint>> = { second: 1n, millisecond: 1000n, microsecond: 1_000_000n, nanosecond: 1_000_000_000n };
const DIGITS: Readonly<Record<Unit, number>> = { second: 0, millisecond: 3, microsecond: 6, nanosecond: 9 };

function unit(name: string, v: Value): Unit {
  return option(name, v, UNITS);
}

/** Integer division rounding down (Erlang's convert_time_unit for non-negative times). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function mod(a: bigint, b: bigint): bigint {
  const r = a % b;
  return r < 0n ? r + b : r;
}

/** A time converted between units (rounding down when the target is coarser). */
function convert(t: bigint, from: Unit, to: Unit): bigint {
  const f = PER_SECOND[from];
  const g = PER_SECOND[to];
  return g >= f ? t * (g / f) : floorDiv(t, f / g);
}

// Wall-clock nanoseconds: hrtime for precision, anchored to Date.now() once.
const ANCHOR_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** The current system time in `u` (EMQX's erlang:system_time(Unit)). */
export function systemTime(u: Unit): bigint {
  if (u === 'second') return BigInt(Math.floor(Date.now() / 1000));
  if (u === 'millisecond') return BigInt(Date.now());
  return convert(process.hrtime.bigint() + ANCHOR_NS, 'nanosecond', u);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The date of a day number since 1970-01-01 (Hinnant's civil_from_days). */
function civilFromDays(z0: number): [number, number, number] {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

function validDate(y: number, m: number, d: number): boolean {
  return y >= 0 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

function pad(n: number | bigint, width: number): string {
  return String(n).padStart(width, '0');
}

/** The host's UTC offset in seconds at a moment (ms since the epoch). */
function localOffset(ms: number): number {
  return -new Date(ms).getTimezoneOffset() * 60;
}

/**
 * EMQX's time offsets (offset_second): an integer is seconds; undefined is 0; `Z`/`z` is UTC;
 * `local` is the host's; `±hh:mm`, `±hh:mm:ss` and `±hhmm` are offsets from UTC.
 */
export function offsetSeconds(name: string, v: Value): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (v === undefined) return 0;
  const s = text(name, v);
  if (s === 'local') return localOffset(Date.now());
  if (s === 'Z' || s === 'z') return 0;
  const sign = s[0] === '+' ? 1 : s[0] === '-' ? -1 : fail(name, `bad_time_offset ${show(v)}`);
  const rest = s.slice(1);
  const parts = rest.includes(':') ? rest.split(':').filter((p) => p !== '') : rest.length === 4 ? [rest.slice(0, 2), rest.slice(2)] : [];
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => /^[0-9]+$/.test(p))) fail(name, `bad_time_offset ${show(v)}`);
  const [h, m, sec = 0] = parts.map(Number) as [number, number, number?];
  if (h > 23 || m > 59 || sec > 59) fail(name, `bad_time_offset ${show(v)}`);
  return sign * (h * 3600 + m * 60 + sec);
}

/** "+hh:mm" (or with seconds / without the colon) for an offset in seconds. */
function offsetText(offset: number, colons: 0 | 1 | 2): string {
  const sign = offset >= 0 ? '+' : '-';
  const a = Math.abs(offset);
  const h = pad(Math.floor(a / 3600), 2);
  const m = pad(Math.floor((a % 3600) / 60), 2);
  if (colons === 0) return `${sign}${h}${m}`;
  if (colons === 1) return `${sign}${h}:${m}`;
  return `${sign}${h}:${m}:${pad(a % 60, 2)}`;
}

/** Date and time fields of whole seconds since the epoch. */
function fields(secs: bigint): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const days = Number(floorDiv(secs, 86400n));
  const rem = Number(mod(secs, 86400n));
  const [y, mo, d] = civilFromDays(days);
  return { y, mo, d, h: Math.floor(rem / 3600), mi: Math.floor((rem % 3600) / 60), s: rem % 60 };
}

/**
 * RFC 3339 text of a time (calendar:system_time_to_rfc3339 with EMQX's defaults): the host's
 * offset (`+00:00` for UTC), and a fraction of as many digits as the unit has.
 */
export function toRfc3339(t: bigint, u: Unit): string {
  const secs = floorDiv(t, PER_SECOND[u]);
  const offset = localOffset(Number(secs) * 1000);
  const f = fields(secs + BigInt(offset));
  const frac = u === 'second' ? '' : `.${pad(mod(t, PER_SECOND[u]), DIGITS[u])}`;
  return `${pad(f.y, 4)}-${pad(f.mo, 2)}-${pad(f.d, 2)}T${pad(f.h, 2)}:${pad(f.mi, 2)}:${pad(f.s, 2)}${frac}${offsetText(offset, 1)}`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2}).(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** calendar:rfc3339_to_system_time: the time in `u`, a fraction past the unit's precision dropped. */
export function fromRfc3339(name: string, s: string, u: Unit): bigint {
  const m = RFC3339.exec(s);
  if (!m) return fail(name, `not an RFC 3339 date-time: ${show(s)}`);
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || sec > 59) fail(name, `not a valid date-time: ${show(s)}`);
  const offset = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 3600 + Number(m[11]) * 60);
  const secs = BigInt(daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset);
  const fracDigits = m[7] ?? '';
  const frac = fracDigits ? (BigInt(fracDigits) * PER_SECOND[u]) / 10n ** BigInt(fracDigits.length) : 0n;
  return secs * PER_SECOND[u] + frac;
}

// format_date / date_to_unix_ts directives, in the order EMQX tries them at each position.
type Directive = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'nanosecond' | 'millisecond' | 'microsecond' | 'tz' | 'tz1' | 'tz2';
const DIRECTIVES: readonly [string, Directive][] = [
  ['%Y', 'year'],
  ['%m', 'month'],
  ['%d', 'day'],
  ['%H', 'hour'],
  ['%M', 'minute'],
  ['%S', 'second'],
  ['%N', 'nanosecond'],
  ['%3N', 'millisecond'],
  ['%6N', 'microsecond'],
  ['%z', 'tz'],
  ['%:z', 'tz1'],
  ['%::z', 'tz2'],
];
/** How many chars date_to_unix_ts reads for each directive. */
const WIDTH: Readonly<Record<Directive, number>> = { year: 4, month: 2, day: 2, hour: 2, minute: 2, second: 2, nanosecond: 9, millisecond: 3, microsecond: 6, tz: 5, tz1: 6, tz2: 9 };

type FormatToken = Directive | { readonly literal: string };

const formats = new BoundedCache<string, FormatToken[]>(256);

/** A format string as directives and literal text (cached). */
function parseFormat(fmt: string): FormatToken[] {
  const out: FormatToken[] = [];
  let lit = '';
  let i = 0;
  outer: while (i < fmt.length) {
    if (fmt[i] === '%') {
      for (const [d, key] of DIRECTIVES) {
        if (fmt.startsWith(d, i)) {
          if (lit) out.push({ literal: lit });
          lit = '';
          out.push(key);
          i += d.length;
          continue outer;
        }
      }
    }
    lit += fmt[i];
    i++;
  }
  if (lit) out.push({ literal: lit });
  return out;
}

/** EMQX's format_date: `t` (in `u`) shown at `offset` seconds from UTC in the format's directives. */
export function formatDate(u: Unit, offset: number, fmt: string, t: bigint): string {
  const f = fields(floorDiv(t + BigInt(offset) * PER_SECOND[u], PER_SECOND[u]));
  const frac = (to: Unit): string => pad(convert(mod(t, PER_SECOND[u]), u, to), DIGITS[to]);
  let out = '';
  for (const tok of formats.get(fmt, parseFormat)) {
    if (typeof tok !== 'string') out += tok.literal;
    else if (tok === 'year') out += pad(f.y, 4);
    else if (tok === 'month') out += pad(f.mo, 2);
    else if (tok === 'day') out += pad(f.d, 2);
    else if (tok === 'hour') out += pad(f.h, 2);
    else if (tok === 'minute') out += pad(f.mi, 2);
    else if (tok === 'second') out += pad(f.s, 2);
    else if (tok === 'millisecond' || tok === 'microsecond' || tok === 'nanosecond') out += u === 'second' ? pad(0, DIGITS[tok]) : frac(tok);
    else out += offsetText(offset, tok === 'tz' ? 0 : tok === 'tz1' ? 1 : 2);
  }
  return out;
}

// The range EMQX accepts: year 0 to 9999.
const MIN_SECS = -62167219200n;
const MAX_SECS = 253402300800n;

/**
 * EMQX's date_to_unix_ts: reads the date text by position, each directive taking its fixed width
 * and literal text skipped unread (so `%H-%M-%S` reads `10:40:12`); an offset directive in the
 * text counts. Year, month, day, hour, minute and second are required.
 */
export function parseDate(name: string, u: Unit, fmt: string, s: string): bigint {
  const parts: Partial<Record<Directive, number>> = {};
  let offset = 0;
  let at = 0;
  for (const tok of formats.get(fmt, parseFormat)) {
    if (at >= s.length) break;
    const width = typeof tok === 'string' ? WIDTH[tok] : tok.literal.length;
    if (at + width > s.length) fail(name, `bad_formatter_or_date: ${show(s)} is shorter than ${show(fmt)}`);
    const piece = s.slice(at, at + width);
    at += width;
    if (typeof tok !== 'string') continue;
    if (tok === 'tz' || tok === 'tz1' || tok === 'tz2') offset = offsetSeconds(name, piece);
    else if (/^[+-]?[0-9]+$/.test(piece)) parts[tok] = Number(piece);
    else fail(name, `bad_formatter_or_date: ${show(piece)} is not a number`);
  }
  const need = (k: Directive): number => parts[k] ?? fail(name, `missing_date_part ${k}`);
  const y = need('year');
  const mo = need('month');
  const d = need('day');
  const h = need('hour');
  const mi = need('minute');
  const sec = need('second');
  if (!validDate(y, mo, d)) fail(name, `not a valid date: ${show(s)}`);
  const secs = BigInt(daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset);
  if (secs < MIN_SECS || secs >= MAX_SECS) fail(name, `bad_format: ${show(s)} is out of range`);
  const precision: Unit = parts.nanosecond !== undefined ? 'nanosecond' : parts.microsecond !== undefined ? 'microsecond' : parts.millisecond !== undefined ? 'millisecond' : 'second';
  let total = convert(secs, 'second', precision);
  for (const k of ['millisecond', 'microsecond', 'nanosecond'] as const) {
    const v = parts[k];
    if (v !== undefined) total += convert(BigInt(v), k, precision);
  }
  return convert(total, precision, u);
}

/** A time argument: an integer in the unit given. */
function time(name: string, v: Value): bigint {
  return BigInt(int(name, v));
}

/** mongo_date's value: EMQX's rule-test form `ISODate(2024-02-23T15:48:57.871Z)` (UTC, milliseconds). */
function isoDate(ms: bigint): string {
  return `ISODate(${new Date(Number(ms)).toISOString()})`;
}

/** Time functions (now_rfc3339, format_date, date_to_unix_ts, mongo_date...). */
export const TIME_FUNCTIONS: FunctionTable = {
  now_rfc3339: spec([0, 1], (args) => {
    const u = args.length === 0 ? 'second' : unit('now_rfc3339', args[0]);
    return toRfc3339(systemTime(u), u);
  }),
  unix_ts_to_rfc3339: spec([1, 2], (args) => {
    const u = args.length === 1 ? 'second' : unit('unix_ts_to_rfc3339', args[1]);
    return toRfc3339(time('unix_ts_to_rfc3339', args[0]), u);
  }),
  rfc3339_to_unix_ts: spec([1, 2], (args) => {
    const u = args.length === 1 ? 'second' : unit('rfc3339_to_unix_ts', args[1]);
    return Number(fromRfc3339('rfc3339_to_unix_ts', text('rfc3339_to_unix_ts', args[0]), u));
  }),
  now_timestamp: spec([0, 1], (args) => Number(systemTime(args.length === 0 ? 'second' : unit('now_timestamp', args[0])))),
  format_date: spec([3, 4], (args) => {
    const u = unit('format_date', args[0]);
    const offset = offsetSeconds('format_date', args[1]);
    const t = args.length === 4 ? time('format_date', args[3]) : systemTime(u);
    return formatDate(u, offset, text('format_date', args[2]), t);
  }),
  date_to_unix_ts: spec([3, 4], (args) => {
    const u = unit('date_to_unix_ts', args[0]);
    const [fmt, s] = args.length === 4 ? [args[2], args[3]] : [args[1], args[2]];
    let t = parseDate('date_to_unix_ts', u, text('date_to_unix_ts', fmt), text('date_to_unix_ts', s));
    if (args.length === 4) t -= convert(BigInt(offsetSeconds('date_to_unix_ts', args[1])), 'second', u);
    return Number(t);
  }),
  timezone_to_offset_seconds: spec([1], (args) => offsetSeconds('timezone_to_offset_seconds', args[0])),
  timezone_to_second: spec([1], (args) => offsetSeconds('timezone_to_second', args[0])),
  mongo_date: spec([0, 1, 2], (args) => {
    if (args.length === 0) return isoDate(systemTime('millisecond'));
    const t = time('mongo_date', args[0]);
    return isoDate(args.length === 1 ? t : convert(t, unit('mongo_date', args[1]), 'millisecond'));
  }),
};
