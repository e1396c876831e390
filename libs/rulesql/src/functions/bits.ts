import type { Value } from '../value';
import { bytes, fail, int, option, show, spec, type FunctionTable } from './args';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

function isInt32(x: number): boolean {
  return x >= INT32_MIN && x <= INT32_MAX;
}

/** A bitwise operation on Erlang's unbounded integers: native for 32-bit operands, else BigInt. */
function bitwise(name: string, small: (a: number, b: number) => number, big: (a: bigint, b: bigint) => bigint) {
  return spec([2], (args) => {
    const a = int(name, args[0]);
    const b = int(name, args[1]);
    if (isInt32(a) && isInt32(b)) return small(a, b);
    return Number(big(BigInt(a), BigInt(b)));
  });
}

/** x shifted left by n bits (right when n is negative): exact, as powers of two are. */
function shiftLeft(name: string, x: number, n: number): number {
  const r = n >= 0 ? x * 2 ** n : Math.floor(x / 2 ** -n);
  if (!Number.isFinite(r)) fail(name, `${x} shifted by ${n} is too large`);
  return r;
}

/** Bytes of an iolist (bytesize/1): text, binaries, byte integers and nested arrays of them. */
function iolistSize(v: Value): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Buffer.isBuffer(v)) return v.length;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255) return 1;
  if (Array.isArray(v)) {
    let n = 0;
    for (const el of v) n += iolistSize(el);
    return n;
  }
  return fail('bytesize', `expected a string, binary or iolist, got ${show(v)}`);
}

/** `n` bits of `buf` from bit `offset`, most significant first, as an unsigned integer. */
export function readBits(buf: Buffer, offset: number, n: number): bigint {
  let v = 0n;
  let pos = offset;
  let left = n;
  // Whole bytes when aligned, bits at the edges.
  while (left > 0) {
    const byte = buf[pos >> 3] ?? 0;
    const used = pos & 7;
    const avail = 8 - used;
    const take = Math.min(avail, left);
    const chunk = (byte >> (avail - take)) & ((1 << take) - 1);
    v = (v << BigInt(take)) | BigInt(chunk);
    pos += take;
    left -= take;
  }
  return v;
}

/**
 * An n-bit field read little-endian the Erlang way: the first 8 bits are the least significant
 * byte, and a last partial chunk (n not a multiple of 8) holds the most significant bits.
 */
function littleEndian(value: bigint, n: number): bigint {
  let out = 0n;
  let shift = 0n;
  let left = n;
  while (left > 0) {
    const take = Math.min(8, left);
    left -= take;
    const chunk = (value >> BigInt(left)) & ((1n << BigInt(take)) - 1n);
    out |= chunk << shift;
    shift += BigInt(take);
  }
  return out;
}

/** An IEEE 754 half-precision value from its 16 bits. */
function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** A float of 16, 32 or 64 bits; Erlang matches no NaN or infinity. */
function toFloat(bits: bigint, n: number): number | undefined {
  let f: number;
  if (n === 64) {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, bits);
    f = view.getFloat64(0);
  } else if (n === 32) {
    const view = new DataView(new ArrayBuffer(4));
    view.setUint32(0, Number(bits));
    f = view.getFloat32(0);
  } else {
    f = half(Number(bits));
  }
  return Number.isFinite(f) ? f : undefined;
}

/** The n bits as bytes, right-aligned in the last byte when n is not a multiple of 8. */
function bitsOut(buf: Buffer, offset: number, n: number): Buffer {
  if ((offset & 7) === 0 && (n & 7) === 0) return Buffer.from(buf.subarray(offset >> 3, (offset + n) >> 3));
  let v = readBits(buf, offset, n);
  const out = Buffer.alloc(Math.ceil(n / 8));
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const TYPES = ['integer', 'float', 'bits'] as const;
const SIGNEDNESS = ['unsigned', 'signed'] as const;
const ENDIANNESS = ['big', 'little'] as const;

/**
 * EMQX's subbits/2..6: `len` bits from bit `start` (1-based) of `bin`, as an integer, a float or
 * bits. When fewer than `len` bits remain, the rest of the binary is taken; a start past the end
 * gives undefined.
 */
function subbits(args: Value[]): Value {
  const name = 'subbits';
  const bin = bytes(name, args[0]);
  const start = args.length === 2 ? 1 : int(name, args[1]);
  const len = int(name, args.length === 2 ? args[1] : args[2]);
  const type = args.length > 3 ? option(name, args[3], TYPES) : 'integer';
  const signed = (args.length > 4 ? option(name, args[4], SIGNEDNESS) : 'unsigned') === 'signed';
  const little = (args.length > 5 ? option(name, args[5], ENDIANNESS) : 'big') === 'little';
  const begin = start - 1;
  const total = bin.length * 8;
  if (begin < 0 || begin >= total) return undefined;
  const rest = total - begin;
  const fits = (n: number): boolean => n >= 0 && n <= rest && (type !== 'float' || n === 16 || n === 32 || n === 64);
  const n = fits(len) ? len : fits(rest) ? rest : fail(name, `no ${len}-bit float at bit ${start}`);
  if (type === 'bits') return bitsOut(bin, begin, n);
  let v = readBits(bin, begin, n);
  if (little) v = littleEndian(v, n);
  if (type === 'float') return toFloat(v, n) ?? fail(name, `bits at ${start} are not a finite float`);
  if (signed && n > 0 && v >> BigInt(n - 1) === 1n) v -= 1n << BigInt(n);
  return Number(v);
}

/** Bitwise operations and bit-sequence functions (bitand, bitsl, bitsize, subbits...). */
export const BITS_FUNCTIONS: FunctionTable = {
  bitnot: spec([1], (args) => -int('bitnot', args[0]) - 1),
  bitand: bitwise(
    'bitand',
    (a, b) => a & b,
    (a, b) => a & b,
  ),
  bitor: bitwise(
    'bitor',
    (a, b) => a | b,
    (a, b) => a | b,
  ),
  bitxor: bitwise(
    'bitxor',
    (a, b) => a ^ b,
    (a, b) => a ^ b,
  ),
  bitsl: spec([2], (args) => shiftLeft('bitsl', int('bitsl', args[0]), int('bitsl', args[1]))),
  bitsr: spec([2], (args) => shiftLeft('bitsr', int('bitsr', args[0]), -int('bitsr', args[1]))),
  bitsize: spec([1], (args) => (typeof args[0] === 'string' ? Buffer.byteLength(args[0]) : bytes('bitsize', args[0]).length) * 8),
  bytesize: spec([1], (args) => iolistSize(args[0])),
  subbits: spec([2, 3, 4, 5, 6], subbits),
};
