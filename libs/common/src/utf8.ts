/**
 * UTF-8 string helpers for the hot paths (record and packet encoders). Topics, client ids and
 * header names are short and almost always ASCII: for those a loop in JavaScript is about twice
 * as fast as Buffer#write and Buffer.byteLength, which cross into C++ on every call (measured
 * at 12 characters: 43 ns against 88 ns per write). Anything else takes Node's own functions.
 */

/** Strings up to this length are handled here; longer ones go to Node at once. */
const SHORT = 64;

/** The UTF-8 length of `s` (Buffer.byteLength(s)). */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return n;
}

/**
 * Writes `s` as UTF-8 at `pos` and returns the bytes written (buf.write(s, pos, 'utf8')); the
 * buffer must have room for all of it (utf8Length(s) bytes).
 */
export function writeUtf8(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n > SHORT) return buf.write(s, pos, 'utf8');
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // Not ASCII: Node writes the whole string (what was copied so far is overwritten).
    if (c > 0x7f) return buf.write(s, pos, 'utf8');
    buf[pos + i] = c;
  }
  return n;
}
