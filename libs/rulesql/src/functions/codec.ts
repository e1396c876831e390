import { inflateSync } from 'node:zlib';
import { jsonEncode, RuleEvalError, str, type Value, type ValueMap } from '../value';
import { binOut, bytes, fail, setKey, show, spec, text, type FunctionTable } from './args';

interface Base64Options {
  padding: boolean;
  urlsafe: boolean;
}

/** base64_encode/decode's options (EMQX 6): `no_padding`, `urlsafe`; other words change nothing. */
function base64Options(args: readonly Value[]): Base64Options {
  const opts: Base64Options = { padding: true, urlsafe: false };
  for (const a of args.slice(1)) {
    const o = typeof a === 'string' ? a : Buffer.isBuffer(a) ? a.toString('utf8') : '';
    if (o === 'no_padding') opts.padding = false;
    else if (o === 'urlsafe') opts.urlsafe = true;
  }
  return opts;
}

function base64Encode(b: Buffer, opts: Base64Options): string {
  let s = b.toString('base64');
  if (opts.urlsafe) s = s.replace(/[+/]/g, (c) => (c === '+' ? '-' : '_'));
  if (!opts.padding) s = s.replace(/=+$/, '');
  return s;
}

const STANDARD = /^[A-Za-z0-9+/]*(?:={0,2})$/;
const URLSAFE = /^[A-Za-z0-9_-]*(?:={0,2})$/;

/** Strict base64: the alphabet asked for, padding required unless `no_padding` (whitespace ignored). */
function base64Decode(name: string, s: string, opts: Base64Options): Buffer {
  const t = /\s/.test(s) ? s.replace(/\s+/g, '') : s;
  const ok = (opts.urlsafe ? URLSAFE : STANDARD).test(t) && t.length % 4 !== 1 && (opts.padding ? t.length % 4 === 0 : true);
  const padded = t.indexOf('=');
  if (!ok || (padded >= 0 && t.length % 4 !== 0)) fail(name, `invalid base64 ${show(s)}`);
  return Buffer.from(t, opts.urlsafe ? 'base64url' : 'base64');
}

// Erlang's external term format (term_to_binary / binary_to_term), the subset the value model has.
const VERSION = 131;
const NEW_FLOAT_EXT = 70;
const BIT_BINARY_EXT = 77;
const COMPRESSED = 80;
const SMALL_INTEGER_EXT = 97;
const INTEGER_EXT = 98;
const FLOAT_EXT = 99;
const ATOM_EXT = 100;
const SMALL_TUPLE_EXT = 104;
const LARGE_TUPLE_EXT = 105;
const NIL_EXT = 106;
const STRING_EXT = 107;
const LIST_EXT = 108;
const BINARY_EXT = 109;
const SMALL_BIG_EXT = 110;
const LARGE_BIG_EXT = 111;
const SMALL_ATOM_EXT = 115;
const MAP_EXT = 116;
const ATOM_UTF8_EXT = 118;
const SMALL_ATOM_UTF8_EXT = 119;

function u8(n: number): Buffer {
  return Buffer.from([n]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function atom(name: string): Buffer {
  const b = Buffer.from(name, 'utf8');
  return Buffer.concat([u8(SMALL_ATOM_UTF8_EXT), u8(b.length), b]);
}

function binary(b: Buffer): Buffer {
  return Buffer.concat([u8(BINARY_EXT), u32(b.length), b]);
}

function encodeInteger(n: number): Buffer {
  if (n >= 0 && n <= 255) return Buffer.from([SMALL_INTEGER_EXT, n]);
  if (n >= -0x80000000 && n <= 0x7fffffff) {
    const b = Buffer.alloc(5);
    b[0] = INTEGER_EXT;
    b.writeInt32BE(n, 1);
    return b;
  }
  let big = BigInt(n);
  const sign = big < 0n ? 1 : 0;
  if (big < 0n) big = -big;
  const digits: number[] = [];
  while (big > 0n) {
    digits.push(Number(big & 0xffn));
    big >>= 8n;
  }
  return Buffer.from([SMALL_BIG_EXT, digits.length, sign, ...digits]);
}

/**
 * A value in Erlang's external term format, as term_to_binary writes it: integers, floats
 * (a non-integral number; 1.0 is the integer 1 here), text as binaries, true/false/undefined/null
 * as atoms, arrays as lists and maps with binary keys.
 */
export function termEncode(v: Value): Buffer {
  const out: Buffer[] = [u8(VERSION)];
  const put = (x: Value): void => {
    if (x === undefined) out.push(atom('undefined'));
    else if (x === null) out.push(atom('null'));
    else if (typeof x === 'boolean') out.push(atom(x ? 'true' : 'false'));
    else if (typeof x === 'number') {
      if (Number.isInteger(x)) out.push(encodeInteger(x));
      else if (!Number.isFinite(x)) fail('term_encode', `${x} has no Erlang form`);
      else {
        const b = Buffer.alloc(9);
        b[0] = NEW_FLOAT_EXT;
        b.writeDoubleBE(x, 1);
        out.push(b);
      }
    } else if (typeof x === 'string') out.push(binary(Buffer.from(x, 'utf8')));
    else if (Buffer.isBuffer(x)) out.push(binary(x));
    else if (Array.isArray(x)) {
      if (x.length > 0) {
        out.push(u8(LIST_EXT), u32(x.length));
        for (const el of x) put(el);
      }
      out.push(u8(NIL_EXT));
    } else {
      const keys = Object.keys(x);
      out.push(u8(MAP_EXT), u32(keys.length));
      for (const k of keys) {
        out.push(binary(Buffer.from(k, 'utf8')));
        put(x[k]);
      }
    }
  };
  put(v);
  return Buffer.concat(out);
}

class TermReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) throw new RangeError('truncated term');
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf[this.need(1)] as number;
  }

  u16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }

  u32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }

  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }

  term(depth: number): Value {
    if (depth > 10_000) throw new RangeError('term nested too deeply');
    const tag = this.u8();
    switch (tag) {
      case SMALL_INTEGER_EXT:
        return this.u8();
      case INTEGER_EXT:
        return this.buf.readInt32BE(this.need(4));
      case NEW_FLOAT_EXT:
        return this.buf.readDoubleBE(this.need(8));
      case FLOAT_EXT:
        return parseFloat(this.bytes(31).toString('latin1'));
      case SMALL_BIG_EXT:
      case LARGE_BIG_EXT: {
        const n = tag === SMALL_BIG_EXT ? this.u8() : this.u32();
        const sign = this.u8();
        const digits = this.bytes(n);
        let v = 0n;
        for (let i = digits.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(digits[i] as number);
        return Number(sign ? -v : v);
      }
      case ATOM_EXT:
      case ATOM_UTF8_EXT:
        return atomValue(this.bytes(this.u16()).toString(tag === ATOM_EXT ? 'latin1' : 'utf8'));
      case SMALL_ATOM_EXT:
      case SMALL_ATOM_UTF8_EXT:
        return atomValue(this.bytes(this.u8()).toString(tag === SMALL_ATOM_EXT ? 'latin1' : 'utf8'));
      case BINARY_EXT:
        return binOut(Buffer.from(this.bytes(this.u32())));
      case BIT_BINARY_EXT: {
        const n = this.u32();
        this.u8(); // bits used in the last byte: the value model has no bitstrings
        return Buffer.from(this.bytes(n));
      }
      case NIL_EXT:
        return [];
      case STRING_EXT:
        return Array.from(this.bytes(this.u16()));
      case LIST_EXT: {
        const n = this.u32();
        const out: Value[] = [];
        for (let i = 0; i < n; i++) out.push(this.term(depth + 1));
        const tail = this.term(depth + 1);
        if (!Array.isArray(tail) || tail.length > 0) throw new RangeError('improper list');
        return out;
      }
      case SMALL_TUPLE_EXT:
      case LARGE_TUPLE_EXT: {
        const n = tag === SMALL_TUPLE_EXT ? this.u8() : this.u32();
        const out: Value[] = [];
        for (let i = 0; i < n; i++) out.push(this.term(depth + 1));
        return out;
      }
      case MAP_EXT: {
        const n = this.u32();
        const out: ValueMap = {};
        for (let i = 0; i < n; i++) {
          const k = this.term(depth + 1);
          setKey(out, typeof k === 'string' ? k : Buffer.isBuffer(k) ? k.toString('utf8') : str(k), this.term(depth + 1));
        }
        return out;
      }
      default:
        throw new RangeError(`term tag ${tag} has no value-model form`);
    }
  }
}

/** true/false/undefined/null are those values; any other atom is its name as text. */
function atomValue(name: string): Value {
  if (name === 'true') return true;
  if (name === 'false') return false;
  if (name === 'undefined') return undefined;
  if (name === 'null') return null;
  return name;
}

/**
 * binary_to_term for the subset the value model has: numbers, binaries, atoms (true, false,
 * undefined and null as such, others as text), lists and tuples (as arrays), maps, compressed
 * terms. Pids, references, funs and the like are an error.
 */
export function termDecode(b: Buffer): Value {
  try {
    if (b[0] !== VERSION) throw new RangeError('no version byte');
    let r = new TermReader(b.subarray(1));
    if (b[1] === COMPRESSED) {
      const head = new TermReader(b.subarray(2));
      const size = head.u32();
      r = new TermReader(inflateSync(b.subarray(6), { maxOutputLength: Math.max(size, 1) }));
    }
    const v = r.term(0);
    if (!r.done()) throw new RangeError('bytes after the term');
    return v;
  } catch (e) {
    return fail('term_decode', `not an external term: ${(e as Error).message}`);
  }
}

/** Codecs: base64, JSON and Erlang's external term format. */
export const CODEC_FUNCTIONS: FunctionTable = {
  base64_encode: spec([1, 2, 3], (args) => base64Encode(bytes('base64_encode', args[0]), base64Options(args))),
  base64_decode: spec([1, 2, 3], (args) => binOut(base64Decode('base64_decode', text('base64_decode', args[0]), base64Options(args)))),
  json_encode: spec([1], (args) => jsonEncode(args[0])),
  json_decode: spec([1], (args) => {
    const v = args[0];
    if (typeof v !== 'string' && !Buffer.isBuffer(v)) return fail('json_decode', `expected JSON text, got ${show(v)}`);
    try {
      return JSON.parse(typeof v === 'string' ? v : v.toString('utf8')) as Value;
    } catch (e) {
      throw new RuleEvalError('decode_json_failed', `json_decode: ${(e as Error).message}`);
    }
  }),
  term_encode: spec([1], (args) => termEncode(args[0])),
  term_decode: spec([1], (args) => termDecode(bytes('term_decode', args[0]))),
};

