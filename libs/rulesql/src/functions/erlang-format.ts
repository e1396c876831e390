import { isMap, type Value } from '../value';
import { BoundedCache, fail, show } from './args';

/**
 * Erlang's io_lib:format as sprintf/sprintf_s use it: control sequences `~F.P.PadModC` with
 * C one of `~ n c s w p W P e f g b B x X # i`, F and P numbers or `*` (taken from the
 * arguments), Pad a character and Mod `t` (Unicode) or `l`. Terms print in Erlang syntax:
 * text as `<<"abc">>`, maps as `#{<<"k">> => 1}`, undefined/null/true/false as atoms. `~p` does
 * not break long lines as Erlang's pretty printer does.
 */
export function erlangFormat(format: string, args: readonly Value[]): string {
  const parts = parsedFormats.get(format, parseFormat);
  let out = '';
  let next = 0;
  const take = (): Value => {
    if (next >= args.length) fail('sprintf', `too few arguments for ${JSON.stringify(format)}`);
    return args[next++];
  };
  for (const part of parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const width = part.width === '*' ? starArg(take()) : part.width;
    const precision = part.precision === '*' ? starArg(take()) : part.precision;
    out += directive(part, width, precision, take);
  }
  if (next !== args.length) fail('sprintf', `${args.length - next} argument(s) left over for ${JSON.stringify(format)}`);
  return out;
}

interface Directive {
  readonly control: string;
  readonly width: number | '*' | undefined;
  readonly precision: number | '*' | undefined;
  readonly pad: string;
  readonly unicode: boolean;
}

type FormatPart = string | Directive;

const parsedFormats = new BoundedCache<string, FormatPart[]>(256);
const CONTROLS = new Set('~ncswpWPefgbBxX#i');

function starArg(v: Value): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail('sprintf', `* needs an integer argument, got ${show(v)}`);
}

/** The format split into literal text and control sequences. */
function parseFormat(format: string): FormatPart[] {
  const parts: FormatPart[] = [];
  let lit = '';
  let i = 0;
  const bad = (): never => fail('sprintf', `bad control sequence in ${JSON.stringify(format)}`);
  const readNumber = (): number | '*' | undefined => {
    if (format[i] === '*') {
      i++;
      return '*';
    }
    const m = /^-?[0-9]+/.exec(format.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return Number(m[0]);
  };
  while (i < format.length) {
    const ch = format[i] as string;
    if (ch !== '~') {
      lit += ch;
      i++;
      continue;
    }
    i++;
    const width = readNumber();
    let precision: number | '*' | undefined;
    let pad = ' ';
    if (format[i] === '.') {
      i++;
      precision = readNumber();
      if (format[i] === '.') {
        i++;
        if (i >= format.length) bad();
        if (format[i] === '*') bad();
        pad = format[i] as string;
        i++;
      }
    }
    let unicode = false;
    while (format[i] === 't' || format[i] === 'l' || format[i] === 'k' || format[i] === 'K') {
      if (format[i] === 't') unicode = true;
      i++;
    }
    const control = format[i];
    if (control === undefined || !CONTROLS.has(control)) bad();
    i++;
    if (lit) parts.push(lit);
    lit = '';
    parts.push({ control: control as string, width, precision, pad, unicode });
  }
  if (lit) parts.push(lit);
  return parts;
}

/** Pads `s` to the field width: right-justified, left-justified for a negative width. */
function field(s: string, width: number | undefined, pad: string): string {
  if (width === undefined) return s;
  const w = Math.abs(width);
  const len = [...s].length;
  if (len >= w) return s;
  const fill = pad.repeat(w - len);
  return width < 0 ? s + fill : fill + s;
}

/** A number in a field: Erlang fills a field too small for it with `*`. */
function numericField(s: string, width: number | undefined, pad: string): string {
  if (width !== undefined && s.length > Math.abs(width)) return '*'.repeat(Math.abs(width));
  return field(s, width, pad);
}

function numberArg(v: Value, control: string): number {
  if (typeof v === 'number') return v;
  return fail('sprintf', `~${control} needs a number, got ${show(v)}`);
}

function integerArg(v: Value, control: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail('sprintf', `~${control} needs an integer, got ${show(v)}`);
}

/** Chars of a ~s argument: text, atoms, or an array of char codes and text (an iolist). */
function chars(v: Value): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    let s = '';
    for (const el of v) s += typeof el === 'number' && Number.isInteger(el) && el >= 0 && el <= 0x10ffff ? String.fromCodePoint(el) : chars(el);
    return s;
  }
  return fail('sprintf', `~s needs a string, got ${show(v)}`);
}

function inBase(n: number, base: number, upper: boolean): string {
  if (base < 2 || base > 36) fail('sprintf', `base ${base} is not 2..36`);
  const s = (Number.isSafeInteger(n) ? n.toString(base) : BigInt(n).toString(base)).replace('-', '');
  return (n < 0 ? '-' : '') + (upper ? s.toUpperCase() : s);
}

function directive(d: Directive, width: number | undefined, precision: number | undefined, take: () => Value): string {
  switch (d.control) {
    case '~':
      return field('~', width, d.pad);
    case 'n':
      return '\n';
    case 'i':
      take();
      return '';
    case 'c': {
      const code = integerArg(take(), 'c');
      const times = precision ?? (width === undefined ? 1 : Math.abs(width));
      return field(String.fromCodePoint(code).repeat(times), width, d.pad);
    }
    case 's': {
      let s = chars(take());
      if (precision !== undefined) s = [...s].slice(0, precision).join('');
      return field(s, width, d.pad);
    }
    case 'w':
    case 'W':
    case 'p':
    case 'P': {
      const v = take();
      if (d.control === 'W' || d.control === 'P') take(); // the depth limit
      return field(writeTerm(v, d.unicode, d.control === 'p' || d.control === 'P'), width, d.pad);
    }
    case 'f':
      return numericField(numberArg(take(), 'f').toFixed(precision ?? 6), width, d.pad);
    case 'e':
      return numericField(exponential(numberArg(take(), 'e'), precision ?? 6), width, d.pad);
    case 'g': {
      const x = numberArg(take(), 'g');
      const p = precision ?? 6;
      const a = Math.abs(x);
      return numericField(a >= 0.1 && a < 10 ** p ? x.toFixed(Math.max(p - 1 - Math.floor(Math.log10(a || 1)), 0)) : exponential(x, p), width, d.pad);
    }
    case 'b':
    case 'B':
      return numericField(inBase(integerArg(take(), d.control), precision ?? 10, d.control === 'B'), width, d.pad);
    case 'x':
    case 'X': {
      const n = integerArg(take(), d.control);
      const prefix = chars(take());
      const digits = inBase(n, precision ?? 10, d.control === 'X');
      return numericField(n < 0 ? `-${prefix}${digits.slice(1)}` : prefix + digits, width, d.pad);
    }
    case '#': {
      const n = integerArg(take(), '#');
      const base = precision ?? 10;
      const digits = inBase(n, base, true);
      return numericField(n < 0 ? `-${base}#${digits.slice(1)}` : `${base}#${digits}`, width, d.pad);
    }
    default:
      return fail('sprintf', `unsupported control ~${d.control}`);
  }
}

/** Erlang's ~e: `precision` significant digits, exponent unpadded (3.14000e+0). */
function exponential(x: number, precision: number): string {
  return x.toExponential(Math.max(precision, 2) - 1);
}

/** A float as Erlang prints it (~p, ~w): shortest round-trip digits, always with a point. */
export function erlangFloat(x: number): string {
  const s = String(x);
  const e = s.indexOf('e');
  if (e < 0) return s.includes('.') ? s : `${s}.0`;
  const mantissa = s.slice(0, e);
  const exp = s.slice(e + 1).replace('+', '');
  return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}e${exp}`;
}

/** Is every char in Erlang's printable Latin-1 range (what makes ~p print a string or <<"...">>)? */
function printable(codes: ArrayLike<number>, unicode: boolean): boolean {
  if (codes.length === 0) return false;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] as number;
    if ((c >= 32 && c <= 126) || (c >= 8 && c <= 13) || c === 27) continue;
    if (unicode && c >= 160 && !(c >= 0xd800 && c <= 0xdfff)) continue;
    return false;
  }
  return true;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\b': '\\b', '\f': '\\f', '\x1b': '\\e' };

function quoted(s: string): string {
  return `"${s.replace(/["\\\n\r\t\v\b\f\x1b]/g, (c) => ESCAPES[c] as string)}"`;
}

/** A binary in Erlang syntax: <<"text">>, <<"text"/utf8>> under ~t, else <<1,2,3>>. */
function writeBinary(b: Buffer, unicode: boolean): string {
  if (printable(b, false)) return `<<${quoted(b.toString('latin1'))}>>`;
  if (unicode) {
    const s = b.toString('utf8');
    const codes = [...s].map((c) => c.codePointAt(0) as number);
    if (Buffer.byteLength(s) === b.length && printable(codes, true)) return `<<${quoted(s)}/utf8>>`;
  }
  return `<<${Array.from(b).join(',')}>>`;
}

/**
 * A value in Erlang term syntax (~w, ~p): binaries, atoms, numbers, lists and maps (keys in
 * Erlang's order for binaries, by bytes). ~p prints a list of printable char codes as a string.
 */
export function writeTerm(v: Value, unicode: boolean, pretty: boolean): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) ? (Math.abs(v) < 1e21 ? String(v) : BigInt(v).toString()) : erlangFloat(v);
  if (typeof v === 'string') return writeBinary(Buffer.from(v, 'utf8'), unicode);
  if (Buffer.isBuffer(v)) return writeBinary(v, unicode);
  if (Array.isArray(v)) {
    if (pretty && v.every((c) => typeof c === 'number' && Number.isInteger(c)) && printable(v as number[], unicode)) {
      return quoted(String.fromCodePoint(...(v as number[])));
    }
    return `[${v.map((el) => writeTerm(el, unicode, pretty)).join(',')}]`;
  }
  if (isMap(v)) {
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const arrow = pretty ? ' => ' : '=>';
    return `#{${keys.map((k) => writeTerm(k, unicode, pretty) + arrow + writeTerm(v[k], unicode, pretty)).join(',')}}`;
  }
  return String(v);
}
