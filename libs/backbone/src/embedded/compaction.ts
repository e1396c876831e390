import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { copyFrame, isTombstone, readKey } from './record-codec';
import { scanSegment, type Segment } from './segment-reader';
import { finishSwap, fsyncDir, segmentFileName, swapFileName } from './files';
import { BackboneError } from '@tributary/common';

const OUT_CHUNK = 1024 * 1024;

/**
 * Rewrites closed segments (all with base < `end`) into one segment holding the latest record of
 * each key, without tombstones (nothing older than them survives, so they have nothing to hide).
 * Records keep their offsets. Crash-safe: the temp file is fsynced and renamed to a .swap file
 * (the commit point) which finishSwap, or recovery at the next open, moves into place.
 * Resolves the new segment (null if nothing survived) and how many records it holds.
 */
export async function compactSegments(
  dir: string,
  closed: readonly Segment[],
  end: number,
): Promise<{ segment: Segment | null; kept: number }> {
  const first = closed[0];
  if (first === undefined) return { segment: null, kept: 0 };

  // Pass 1: the offset of each key's latest record, or -1 when that record is a tombstone.
  const latest = new Map<string, number>();
  for (const seg of closed) {
    const scan = await scanSegment(seg, seg.size, (r) => {
      const key = readKey(r.buf, r.frame);
      if (key !== null) latest.set(key, isTombstone(r.buf, r.frame) ? -1 : r.frame.offset);
    });
    if (scan.end !== 'end') throw new BackboneError('BACKBONE_CORRUPT', `cannot compact ${seg.path}: ${scan.end} record at byte ${scan.pos}`);
  }

  // Pass 2: copy the survivors (and un-keyed records, which compaction cannot judge), in order.
  const tmpPath = join(dir, 'compaction.tmp');
  const fh = await open(tmpPath, 'w');
  let kept = 0;
  let size = 0;
  try {
    for (const seg of closed) {
      // The reader reuses its buffer, so survivors are copied out into chunks, written after.
      const chunks: Array<{ buf: Buffer; used: number }> = [];
      let cur = { buf: Buffer.allocUnsafe(OUT_CHUNK), used: 0 };
      chunks.push(cur);
      await scanSegment(seg, seg.size, (r) => {
        const f = r.frame;
        const key = readKey(r.buf, f);
        if (key !== null && latest.get(key) !== f.offset) return;
        const len = f.end - f.start;
        if (cur.used + len > cur.buf.length) {
          cur = { buf: Buffer.allocUnsafe(Math.max(OUT_CHUNK, len)), used: 0 };
          chunks.push(cur);
        }
        // Flags are cleared: an append call's all-or-nothing marker means nothing once parts are gone.
        cur.used = copyFrame(r.buf, f, cur.buf, cur.used, 0);
        kept++;
      });
      for (const c of chunks) {
        let done = 0;
        while (done < c.used) done += (await fh.write(c.buf, done, c.used - done)).bytesWritten;
        size += c.used;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const swapName = swapFileName(first.base, end);
  await rename(tmpPath, join(dir, swapName));
  await fsyncDir(dir);
  await finishSwap(
    dir,
    swapName,
    closed.map((s) => s.base),
  );
  if (size === 0) return { segment: null, kept: 0 };
  const now = Date.now();
  return {
    segment: { base: first.base, path: join(dir, segmentFileName(first.base)), size, createdAt: now, lastWriteAt: now },
    kept,
  };
}
