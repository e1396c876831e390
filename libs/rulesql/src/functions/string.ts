import { float2str, isMap, jsonEncode, RuleEvalError, str, type Value } from '../value';
import { byteMode, fail, int, list, option, spec, text, textOut, tryJson, type FunctionTable } from './args';
import { erlangFormat } from './erlang-format';
import { JQ_FUNCTIONS } from './jq';
import { concatValues } from './math';
import { compileRegex, regexReplace } from './regex';

// Erlang's string module counts, slices, pads and reverses grapheme clusters ("你好" has length 2,
// "\r\n" is one). The segmenter is slow, so it only sees text with a code point that can join a
// cluster (marks, joiners, variation selectors, emoji modifiers, regional indicators, Hangul jamo,
// prepended signs, CR); other text is one grapheme per code point (per char when it is ASCII).
const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const NOT_ASCII_OR_CR = /[^\x00-\x0c\x0e-\x7f]/;
const JOINS_CLUSTERS =
  /[\p{M}\r\u200c\u200d\ufe00-\ufe0f\uff9e\uff9f\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u{110bd}\u{110cd}\u{1f1e6}-\u{1f1ff}\u{1f3fb}-\u{1f3ff}\u{e0020}-\u{e007f}\u{e0100}-\u{e01ef}]/u;

/** The grapheme clusters of `s`. */
export function graphemes(s: string): string[] {
  if (!NOT_ASCII_OR_CR.test(s)) return s.split('');
  if (!JOINS_CLUSTERS.test(s)) return Array.from(s);
  return Array.from(segmenter.segment(s), (g) => g.segment);
}

/** string:length/1: the number of grapheme clusters. */
export function strlen(s: string): number {
  if (!NOT_ASCII_OR_CR.test(s)) return s.length;
  if (!JOINS_CLUSTERS.test(s)) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff) n++;
    }
    return n;
  }
  return graphemes(s).length;
}

// Erlang's default whitespace for string:trim (unicode_util:whitespace()), "\r\n" included.
const WHITESPACE = new Set(['\t', '\n', '\v', '\f', '\r', ' ', '\r\n', '\x85', '\u200e', '\u200f', '\u2028', '\u2029']);

type Side = 'leading' | 'trailing' | 'both';

/** string:trim/3: graphemes in `set` removed from the given side(s). */
function trim(s: string, side: Side, set: ReadonlySet<string>): string {
  const g = graphemes(s);
  let start = 0;
  let end = g.length;
  if (side !== 'trailing') while (start < end && set.has(g[start] as string)) start++;
  if (side !== 'leading') while (end > start && set.has(g[end - 1] as string)) end--;
  return start === 0 && end === g.length ? s : g.slice(start, end).join('');
}

/** trim/ltrim/rtrim with the default whitespace (/1) or the characters given (/2). */
function trimmer(name: string, side: Side) {
  return spec([1, 2], (args) => {
    const raw = byteMode(args[0], args[1]);
    const s = text(name, args[0], raw);
    const set = args.length === 1 ? WHITESPACE : new Set(Array.from(text(name, args[1], raw)));
    return textOut(trim(s, side, set), raw);
  });
}

/** lower/upper: Unicode case mapping (only ASCII letters when working on raw bytes). */
function caseMapper(name: string, upper: boolean) {
  return spec([1], (args) => {
    const raw = byteMode(args[0]);
    const s = text(name, args[0], raw);
    if (!raw) return upper ? s.toUpperCase() : s.toLowerCase();
    return textOut(s.replace(upper ? /[a-z]+/g : /[A-Z]+/g, (m) => (upper ? m.toUpperCase() : m.toLowerCase())), true);
  });
}

/** string:slice/3: `len` graphemes from grapheme `start` (0-based). */
function slice(s: string, start: number, len: number | undefined): string {
  const end = len === undefined ? undefined : start + len;
  if (!NOT_ASCII_OR_CR.test(s)) return s.slice(start, end);
  return graphemes(s).slice(start, end).join('');
}

const SPLIT_OPTIONS = ['notrim', 'leading', 'leading_notrim', 'trailing', 'trailing_notrim'] as const;

/** EMQX's split/2,3: at every (or the first/last) separator, empty parts dropped unless notrim. */
function split(s: string, sep: string, opt: (typeof SPLIT_OPTIONS)[number] | 'all'): string[] {
  let parts: string[];
  if (sep === '') parts = [s];
  else if (opt === 'all' || opt === 'notrim') parts = s.split(sep);
  else {
    const at = opt.startsWith('leading') ? s.indexOf(sep) : s.lastIndexOf(sep);
    parts = at < 0 ? [s] : [s.slice(0, at), s.slice(at + sep.length)];
  }
  return opt === 'notrim' || opt.endsWith('_notrim') ? parts : parts.filter((p) => p !== '');
}

/**
 * EMQX's tokens/2,3 (string:lexemes): the parts between runs of separator characters, never
 * empty. CR LF is one unit, a separator only with `nocrlf` (which also makes CR and LF separators).
 */
function tokens(s: string, seps: string, nocrlf: boolean): string[] {
  const set = new Set(Array.from(seps));
  if (nocrlf) set.add('\r').add('\n');
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i) as number;
    let unit = String.fromCodePoint(cp);
    if (unit === '\r' && s[i + 1] === '\n') unit = '\r\n';
    const isSep = unit === '\r\n' ? nocrlf : set.has(unit);
    if (isSep) {
      if (cur) out.push(cur);
      cur = '';
    } else {
      cur += unit;
    }
    i += unit.length;
  }
  if (cur) out.push(cur);
  return out;
}

const PAD_SIDES = ['trailing', 'leading', 'both'] as const;

/** string:pad/4: `fill` (one grapheme, whatever its length) added until `len` graphemes. */
function pad(s: string, len: number, side: Side, fill: string): string {
  const n = len - strlen(s);
  if (n <= 0) return s;
  if (side === 'leading') return fill.repeat(n) + s;
  if (side === 'trailing') return s + fill.repeat(n);
  const left = Math.floor(n / 2);
  return fill.repeat(left) + s + fill.repeat(n - left);
}

const REPLACE_WHERE = ['all', 'leading', 'trailing'] as const;

/** string:replace/4: every, the first or the last occurrence of `p` replaced. */
function replace(s: string, p: string, r: string, where: (typeof REPLACE_WHERE)[number]): string {
  if (p === '') return s;
  if (where === 'all') return s.split(p).join(r);
  const at = where === 'leading' ? s.indexOf(p) : s.lastIndexOf(p);
  return at < 0 ? s : s.slice(0, at) + r + s.slice(at + p.length);
}

/** find/2,3: the rest of `s` from the first (leading) or last (trailing) occurrence of `p`, else ''. */
function find(s: string, p: string, trailing: boolean): string {
  if (p === '') return s;
  const at = trailing ? s.lastIndexOf(p) : s.indexOf(p);
  return at < 0 ? '' : s.slice(at);
}

function escapeError(reason: string, detail: string): never {
  throw new RuleEvalError(reason, `unescape: ${detail}`);
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', v: '\v', "'": "'", '"': '"', '?': '?', a: '\x07' };

/**
 * EMQX's unescape/1: C escapes (\n \t \r \b \f \v \' \" \\ \? \a) and \xH... (any number of hex
 * digits, a Unicode code point) become the characters; any other escape is an error.
 */
export function unescape(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    const n = s[i + 1];
    if (c !== '\\' || n === undefined) {
      out += c;
      continue;
    }
    const simple = SIMPLE_ESCAPES[n];
    if (simple !== undefined) {
      out += simple;
      i++;
      continue;
    }
    if (n === 'x') {
      const hex = /^[0-9A-Fa-f]+/.exec(s.slice(i + 2));
      if (!hex) escapeError('unrecognized_escape_sequence', '\\x');
      const cp = parseInt(hex[0], 16);
      if (!(cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) escapeError('invalid_unicode_character', `\\x${hex[0]}`);
      out += String.fromCodePoint(cp);
      i += 1 + hex[0].length;
      continue;
    }
    escapeError('unrecognized_escape_sequence', `\\${n}`);
  }
  return out;
}

/** A value as a literal of an SQL VALUES list (join_to_sql_values_string): quoted, \ and ' escaped. */
function sqlValue(v: Value): string {
  if (v === undefined) return 'NULL';
  if (typeof v === 'number') return str(v);
  const s = Array.isArray(v) || isMap(v) ? jsonEncode(v) : Buffer.isBuffer(v) ? v.toString('utf8') : str(v);
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

/** A Redis HSET field value, or undefined for values EMQX drops (maps, arrays, null). */
function redisField(v: Value): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number') return Number.isInteger(v) ? str(v) : float2str(v, 6);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

/**
 * map_to_redis_hset_args/1: a map's fields as `[name1, value1, name2, value2, ...]` for a Redis
 * HSET/HMSET command (a Redis sink splices the array into the command's arguments). Floats have
 * 6 decimals at most; maps, arrays and nulls are dropped; a value that is no map (nor JSON text of
 * one) gives [].
 */
function redisHsetArgs(v: Value): string[] {
  const m = typeof v === 'string' ? tryJson(v) : Buffer.isBuffer(v) ? tryJson(v.toString('utf8')) : v;
  const out: string[] = [];
  if (!isMap(m)) return out;
  for (const [k, val] of Object.entries(m)) {
    const f = redisField(val);
    if (f !== undefined) out.push(k, f);
  }
  return out;
}

/** regex_extract/2: the capture groups of the first match ('' for a group that took no part), or []. */
function regexExtract(s: string, re: RegExp): string[] {
  const m = re.exec(s);
  if (m === null) return [];
  return m.slice(1).map((g) => g ?? '');
}

/** String functions (lower, split, sprintf, regex_replace, join_to_string, unescape, jq...). */
export const STRING_FUNCTIONS: FunctionTable = {
  lower: caseMapper('lower', false),
  upper: caseMapper('upper', true),
  trim: trimmer('trim', 'both'),
  ltrim: trimmer('ltrim', 'leading'),
  rtrim: trimmer('rtrim', 'trailing'),
  reverse: spec([1], (args) => {
    const raw = byteMode(args[0]);
    return textOut(graphemes(text('reverse', args[0], raw)).reverse().join(''), raw);
  }),
  strlen: spec([1], (args) => strlen(text('strlen', args[0], byteMode(args[0])))),
  ascii: spec([1], (args) => {
    const v = args[0];
    const first = Buffer.isBuffer(v) ? v[0] : Buffer.from(text('ascii', v).slice(0, 2), 'utf8')[0];
    return first ?? fail('ascii', 'empty string');
  }),
  substr: spec([2, 3], (args) => {
    const raw = byteMode(args[0]);
    const s = text('substr', args[0], raw);
    const start = int('substr', args[1]);
    const len = args.length === 3 ? int('substr', args[2]) : undefined;
    if (start < 0 || (len !== undefined && len < 0)) fail('substr', 'start and length must not be negative');
    return textOut(slice(s, start, len), raw);
  }),
  split: spec([2, 3], (args) => {
    const raw = byteMode(args[0], args[1]);
    const opt = args.length === 3 ? option('split', args[2], SPLIT_OPTIONS) : 'all';
    return split(text('split', args[0], raw), text('split', args[1], raw), opt).map((p) => textOut(p, raw));
  }),
  tokens: spec([2, 3], (args) => {
    const raw = byteMode(args[0], args[1]);
    if (args.length === 3) option('tokens', args[2], ['nocrlf']);
    return tokens(text('tokens', args[0], raw), text('tokens', args[1], raw), args.length === 3).map((p) => textOut(p, raw));
  }),
  concat: spec([1, 2], (args) => concatValues(args.length === 2 ? args : list('concat', args[0]))),
  sprintf: { arity: { min: 1 }, fn: (args) => erlangFormat(text('sprintf', args[0]), args.slice(1)) },
  sprintf_s: spec([2], (args) => erlangFormat(text('sprintf_s', args[0]), list('sprintf_s', args[1]))),
  pad: spec([2, 3, 4], (args) => {
    const raw = byteMode(args[0], args[3]);
    const s = text('pad', args[0], raw);
    const len = int('pad', args[1]);
    const side = args.length > 2 ? option('pad', args[2], PAD_SIDES) : 'trailing';
    const fill = args.length > 3 ? text('pad', args[3], raw) : ' ';
    return textOut(pad(s, len, side, fill), raw);
  }),
  replace: spec([3, 4], (args) => {
    const raw = byteMode(args[0], args[1], args[2]);
    const where = args.length === 4 ? option('replace', args[3], REPLACE_WHERE) : 'all';
    return textOut(replace(text('replace', args[0], raw), text('replace', args[1], raw), text('replace', args[2], raw), where), raw);
  }),
  regex_match: spec([2], (args) => {
    const raw = byteMode(args[0]);
    return compileRegex('regex_match', text('regex_match', args[1]), false).test(text('regex_match', args[0], raw));
  }),
  regex_replace: spec([3], (args) => {
    const raw = byteMode(args[0]);
    const re = compileRegex('regex_replace', text('regex_replace', args[1]), true);
    return textOut(regexReplace(text('regex_replace', args[0], raw), re, text('regex_replace', args[2], raw)), raw);
  }),
  regex_extract: spec([2], (args) => {
    const raw = byteMode(args[0]);
    const re = compileRegex('regex_extract', text('regex_extract', args[1]), false);
    return regexExtract(text('regex_extract', args[0], raw), re).map((g) => textOut(g, raw));
  }),
  find: spec([2, 3], (args) => {
    const raw = byteMode(args[0], args[1]);
    const trailing = args.length === 3 && option('find', args[2], ['leading', 'trailing']) === 'trailing';
    return textOut(find(text('find', args[0], raw), text('find', args[1], raw), trailing), raw);
  }),
  rm_prefix: spec([2], (args) => {
    const raw = byteMode(args[0], args[1]);
    const s = text('rm_prefix', args[0], raw);
    const prefix = text('rm_prefix', args[1], raw);
    return textOut(s.startsWith(prefix) ? s.slice(prefix.length) : s, raw);
  }),
  join_to_string: spec([1, 2], (args) => {
    const sep = args.length === 2 ? args[0] : ', ';
    const items = list('join_to_string', args.length === 2 ? args[1] : args[0]);
    if (args.length === 2) text('join_to_string', sep);
    const parts: Value[] = [];
    for (const item of items) {
      if (parts.length > 0) parts.push(sep);
      parts.push(item);
    }
    return concatValues(parts);
  }),
  join_to_sql_values_string: spec([1], (args) => list('join_to_sql_values_string', args[0]).map(sqlValue).join(', ')),
  map_to_redis_hset_args: spec([1], (args) => redisHsetArgs(args[0])),
  unescape: spec([1], (args) => {
    const v = args[0];
    if (Buffer.isBuffer(v) && byteMode(v)) fail('unescape', 'the binary is not valid UTF-8');
    return unescape(text('unescape', v));
  }),
  ...JQ_FUNCTIONS,
};
