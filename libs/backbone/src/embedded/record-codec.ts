import type { ConsumedRecord, ProducerRecord, RecordHeaders } from '../backbone';
import { crc32 } from './crc32';
import { BackboneError, ValidationError, writeUtf8 } from '@tributary/common';

/**
 * On-disk record framing (all integers little-endian):
 *
 *   u32 bodyLength | u32 crc32(body) | body
 *   body = u8 flags | i64 offset | i64 timestamp
 *        | i32 keyLength (-1 = null)   | key (UTF-8)
 *        | i32 valueLength (-1 = null) | value
 *        | u32 headerCount | headerCount × (u32 len | UTF-8 name | u32 len | UTF-8 value)
 *
 * FLAG_CONTINUES marks every record of one append() call except its last, so recovery can
 * drop a call that was only partly written (a call is all-or-nothing after a crash).
 */

export const FRAME_HEADER = 8;
/** flags + offset + timestamp + keyLength + valueLength + headerCount. */
export const BODY_FIXED = 1 + 8 + 8 + 4 + 4 + 4;
/** Bodies above this are treated as corruption (a garbage length must not make us allocate GiBs). */
export const MAX_BODY = 256 * 1024 * 1024;
export const FLAG_CONTINUES = 1;
const KNOWN_FLAGS = FLAG_CONTINUES;

export const PARSE_OK = 0;
export const PARSE_NEED_MORE = 1;
export const PARSE_CORRUPT = 2;
export type ParseStatus = typeof PARSE_OK | typeof PARSE_NEED_MORE | typeof PARSE_CORRUPT;

/** A parsed frame. Mutable and reused by scanners so parsing allocates nothing. */
export interface Frame {
  /** Position of the frame's first byte in the buffer. */
  start: number;
  /** Position after the frame (with PARSE_NEED_MORE: the end needed, if known). */
  end: number;
  offset: number;
  timestamp: number;
  flags: number;
}

export function newFrame(): Frame {
  return { start: 0, end: 0, offset: 0, timestamp: 0, flags: 0 };
}

const TWO_32 = 4294967296;

/** Writes the low 32 bits of `n`, little-endian, without Buffer#writeUInt32LE's range checks (the callers' bounds hold). */
function le32(buf: Buffer, pos: number, n: number): void {
  buf[pos] = n;
  buf[pos + 1] = n >>> 8;
  buf[pos + 2] = n >>> 16;
  buf[pos + 3] = n >>> 24;
}

function writeI64(buf: Buffer, pos: number, n: number): void {
  le32(buf, pos, n >>> 0);
  le32(buf, pos + 4, Math.floor(n / TWO_32));
}

function readI64(buf: Buffer, pos: number): number {
  return buf.readInt32LE(pos + 4) * TWO_32 + buf.readUInt32LE(pos);
}

/**
 * The encoded header section (count and entries) of the last frozen headers object seen: most
 * records of a topic share one (the messages topic's schema header), which is then copied
 * instead of encoded per record. Only frozen objects, since an unfrozen one may change.
 */
let cachedHeaders: RecordHeaders | undefined;
let cachedHeaderBytes: Buffer = Buffer.alloc(0);

function frozenHeaderBytes(h: RecordHeaders): Buffer | undefined {
  if (h === cachedHeaders) return cachedHeaderBytes;
  if (!Object.isFrozen(h)) return undefined;
  const buf = Buffer.allocUnsafe(headersBound(h));
  const end = encodeHeaders(buf, 0, h);
  cachedHeaders = h;
  cachedHeaderBytes = Buffer.from(buf.subarray(0, end));
  return cachedHeaderBytes;
}

function headersBound(h: RecordHeaders): number {
  let n = 4;
  for (const k in h) n += 8 + (k.length + String(h[k]).length) * 3;
  return n;
}

/** Writes the header section at `pos` (room for headersBound(h)); returns the end. */
function encodeHeaders(buf: Buffer, pos: number, h: RecordHeaders | undefined): number {
  const countPos = pos;
  pos += 4;
  let count = 0;
  if (h !== undefined) {
    for (const k in h) {
      const kn = writeUtf8(buf, pos + 4, k);
      le32(buf, pos, kn);
      pos += 4 + kn;
      const vn = writeUtf8(buf, pos + 4, String(h[k]));
      le32(buf, pos, vn);
      pos += 4 + vn;
      count++;
    }
  }
  le32(buf, countPos, count);
  return pos;
}

/** An upper bound of the encoded size (UTF-8 is at most 3 bytes per UTF-16 code unit). */
export function maxEncodedSize(r: ProducerRecord): number {
  let n = FRAME_HEADER + BODY_FIXED - 4;
  if (r.key !== null) n += r.key.length * 3;
  if (r.value !== null) n += r.value.length;
  const h = r.headers;
  if (h === undefined) return n + 4;
  const cached = frozenHeaderBytes(h);
  return n + (cached !== undefined ? cached.length : headersBound(h));
}

/** Encodes one record at `pos` (which must have maxEncodedSize(r) bytes free); returns the end. */
export function encodeRecord(
  buf: Buffer,
  pos: number,
  offset: number,
  timestamp: number,
  r: ProducerRecord,
  flags: number,
): number {
  const start = pos;
  pos += FRAME_HEADER;
  buf[pos] = flags;
  writeI64(buf, pos + 1, offset);
  writeI64(buf, pos + 9, timestamp);
  pos += 17;
  if (r.key === null) {
    le32(buf, pos, -1);
    pos += 4;
  } else {
    const n = writeUtf8(buf, pos + 4, r.key);
    le32(buf, pos, n);
    pos += 4 + n;
  }
  const v = r.value;
  if (v === null) {
    le32(buf, pos, -1);
    pos += 4;
  } else {
    le32(buf, pos, v.length);
    buf.set(v, pos + 4);
    pos += 4 + v.length;
  }
  const h = r.headers;
  const cached = h === undefined ? undefined : frozenHeaderBytes(h);
  if (cached !== undefined) {
    buf.set(cached, pos);
    pos += cached.length;
  } else pos = encodeHeaders(buf, pos, h);
  const bodyLength = pos - start - FRAME_HEADER;
  if (bodyLength > MAX_BODY) throw new ValidationError('RECORD_TOO_LARGE', `record too large: ${bodyLength} bytes (at most ${MAX_BODY})`);
  le32(buf, start, bodyLength);
  le32(buf, start + 4, crc32(buf, start + FRAME_HEADER, pos));
  return pos;
}

/**
 * Parses the frame at `pos` (data valid up to `end`), checking its length and flags, and its CRC
 * when its offset is at least `verifyFrom` (seeking skips the CRC of records it passes over).
 */
export function parseFrame(buf: Buffer, pos: number, end: number, frame: Frame, verifyFrom = 0): ParseStatus {
  frame.start = pos;
  if (end - pos < FRAME_HEADER) {
    frame.end = pos + FRAME_HEADER + BODY_FIXED;
    return PARSE_NEED_MORE;
  }
  const bodyLength = buf.readUInt32LE(pos);
  if (bodyLength < BODY_FIXED || bodyLength > MAX_BODY) return PARSE_CORRUPT;
  const recordEnd = pos + FRAME_HEADER + bodyLength;
  frame.end = recordEnd;
  if (recordEnd > end) return PARSE_NEED_MORE;
  const body = pos + FRAME_HEADER;
  const offset = readI64(buf, body + 1);
  if (offset >= verifyFrom && crc32(buf, body, recordEnd) !== buf.readUInt32LE(pos + 4)) return PARSE_CORRUPT;
  const flags = buf[body]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return PARSE_CORRUPT;
  frame.flags = flags;
  frame.offset = offset;
  frame.timestamp = readI64(buf, body + 9);
  return PARSE_OK;
}

function corrupt(frame: Frame): never {
  throw new BackboneError('BACKBONE_CORRUPT', `corrupt record at offset ${frame.offset}: fields overrun the frame`);
}

/** The key of a parsed frame. */
export function readKey(buf: Buffer, frame: Frame): string | null {
  const pos = frame.start + FRAME_HEADER + 17;
  const n = buf.readInt32LE(pos);
  if (n < 0) return null;
  if (pos + 4 + n > frame.end) corrupt(frame);
  return buf.toString('utf8', pos + 4, pos + 4 + n);
}

/** Whether a parsed frame's value is null (a tombstone). */
export function isTombstone(buf: Buffer, frame: Frame): boolean {
  const pos = frame.start + FRAME_HEADER + 17;
  const kn = buf.readInt32LE(pos);
  const valuePos = pos + 4 + Math.max(kn, 0);
  if (valuePos + 4 > frame.end) corrupt(frame);
  return buf.readInt32LE(valuePos) < 0;
}

/** Decodes a parsed frame. The value is copied, so the record does not pin the read buffer. */
export function decodeRecord(buf: Buffer, frame: Frame, topic: string): ConsumedRecord {
  const end = frame.end;
  let pos = frame.start + FRAME_HEADER + 17;
  let key: string | null = null;
  const kn = buf.readInt32LE(pos);
  pos += 4;
  if (kn >= 0) {
    if (pos + kn > end) corrupt(frame);
    key = buf.toString('utf8', pos, pos + kn);
    pos += kn;
  }
  let value: Buffer | null = null;
  const vn = buf.readInt32LE(pos);
  pos += 4;
  if (vn >= 0) {
    if (pos + vn > end) corrupt(frame);
    value = Buffer.from(buf.subarray(pos, pos + vn));
    pos += vn;
  }
  const headers: RecordHeaders = {};
  let count = buf.readUInt32LE(pos);
  pos += 4;
  while (count-- > 0) {
    if (pos + 4 > end) corrupt(frame);
    const hk = buf.readUInt32LE(pos);
    if (pos + 8 + hk > end) corrupt(frame);
    const name = buf.toString('utf8', pos + 4, pos + 4 + hk);
    pos += 4 + hk;
    const hv = buf.readUInt32LE(pos);
    if (pos + 4 + hv > end) corrupt(frame);
    headers[name] = buf.toString('utf8', pos + 4, pos + 4 + hv);
    pos += 4 + hv;
  }
  if (pos !== end) corrupt(frame);
  return { topic, partition: 0, offset: frame.offset, key, value, headers, timestamp: frame.timestamp };
}

/** Copies a frame to `out` at `pos` with new flags, re-computing its CRC (compaction). */
export function copyFrame(src: Buffer, frame: Frame, out: Buffer, pos: number, flags: number): number {
  src.copy(out, pos, frame.start, frame.end);
  out[pos + FRAME_HEADER] = flags;
  const end = pos + (frame.end - frame.start);
  out.writeUInt32LE(crc32(out, pos + FRAME_HEADER, end), pos + 4);
  return end;
}
