import { open, type FileHandle } from 'node:fs/promises';
import { newFrame, parseFrame, PARSE_CORRUPT, PARSE_NEED_MORE, PARSE_OK, type Frame, type ParseStatus } from './record-codec';

/** One segment file: records from offset `base` on, named by that base offset. */
export interface Segment {
  readonly base: number;
  readonly path: string;
  /** Bytes of complete, written records (readers never look past this). */
  size: number;
  /** Wall-clock time of the first and the last write (retention). */
  createdAt: number;
  lastWriteAt: number;
}

const CHUNK = 256 * 1024;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/**
 * Reads a segment's frames through one reused buffer: `next()` parses synchronously from what is
 * buffered, `fill()` reads the next chunk. Records decoded from `buf` must copy what they keep.
 */
export class SegmentReader {
  buf: Buffer = Buffer.alloc(0);
  readonly frame: Frame = newFrame();
  /** Only frames with an offset at least this have their CRC checked (see parseFrame). */
  verifyFrom = 0;
  /** File position of buf[0], valid bytes in buf, parse position in buf. */
  private bufFilePos: number;
  private len = 0;
  private pos = 0;
  /** The last read found the end of the file. */
  eof = false;

  private constructor(
    readonly segment: Segment,
    private readonly fh: FileHandle,
    startPos: number,
  ) {
    this.bufFilePos = startPos;
  }

  /** Opens a segment for reading; null if its file is gone (retention or compaction). */
  static async open(segment: Segment, startPos = 0): Promise<SegmentReader | null> {
    try {
      return new SegmentReader(segment, await open(segment.path, 'r'), startPos);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** File position of the first byte not parsed yet. */
  get filePos(): number {
    return this.bufFilePos + this.pos;
  }

  /** File position up to which bytes are buffered. */
  get bufferedTo(): number {
    return this.bufFilePos + this.len;
  }

  /** Parses the next frame from the buffered bytes; on PARSE_OK `frame` describes it within `buf`. */
  next(): ParseStatus {
    const st = parseFrame(this.buf, this.pos, this.len, this.frame, this.verifyFrom);
    if (st === PARSE_OK) this.pos = this.frame.end;
    return st;
  }

  /** Buffers more bytes after the parse position, up to file position `limit`; false if none. */
  async fill(limit: number): Promise<boolean> {
    const from = this.filePos;
    if (this.bufFilePos + this.len >= limit) return false;
    const needed = Math.max(CHUNK, this.frame.end - this.frame.start);
    const want = Math.min(limit - from, needed);
    if (this.buf.length < want) this.buf = Buffer.allocUnsafe(Math.max(want, CHUNK));
    const { bytesRead } = await this.fh.read(this.buf, 0, want, from);
    this.bufFilePos = from;
    this.pos = 0;
    this.len = bytesRead;
    this.eof = bytesRead === 0;
    return bytesRead > 0;
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export type ScanEnd =
  /** Every byte up to the limit is a valid frame. */
  | 'end'
  /** The last frame is cut short (a torn write). */
  | 'torn'
  /** A frame fails its length, flag or CRC check. */
  | 'corrupt';

/**
 * Calls `onFrame` for each valid frame of a segment up to file position `limit`, in file order.
 * `onFrame` returning false stops the scan. Resolves how the scan ended and where (file position).
 */
export async function scanSegment(
  segment: Segment,
  limit: number,
  onFrame: (reader: SegmentReader) => boolean | void,
): Promise<{ end: ScanEnd | 'stopped'; pos: number }> {
  const reader = await SegmentReader.open(segment);
  if (reader === null) return { end: 'end', pos: 0 };
  try {
    for (;;) {
      const st = reader.next();
      if (st === PARSE_OK) {
        if (onFrame(reader) === false) return { end: 'stopped', pos: reader.filePos };
      } else if (st === PARSE_CORRUPT) {
        return { end: 'corrupt', pos: reader.filePos };
      } else if (st === PARSE_NEED_MORE && !(await reader.fill(limit))) {
        return { end: reader.filePos >= limit ? 'end' : 'torn', pos: reader.filePos };
      }
    }
  } finally {
    await reader.close();
  }
}
