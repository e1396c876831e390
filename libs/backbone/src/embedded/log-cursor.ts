import { BackboneError, type Logger } from '@tributary/common';
import type { ConsumedRecord } from '../backbone';
import { decodeRecord, PARSE_CORRUPT, PARSE_OK } from './record-codec';
import { SegmentReader, type Segment } from './segment-reader';
import type { TopicLog } from './topic-log';

/**
 * A reading position in a topic log: yields records with offset >= `next` from the segment files,
 * never past what the writer has completed. Navigates by offset, not by file, so it copes with
 * segments deleted by retention (it skips ahead) and replaced by compaction (it re-seeks).
 */
export class LogCursor {
  private reader: SegmentReader | null = null;
  /** Where to open next: a segment chosen by `advance`, and a byte position to resume at. */
  private target: Segment | null = null;
  private resumeAt = 0;

  constructor(
    private readonly log: TopicLog,
    /** The next offset to return (records below it are skipped). */
    public next: number,
    private readonly logger: Logger,
  ) {}

  /** Appends up to `max` records to `out`; stops early at the end of what is written. */
  async read(max: number, out: ConsumedRecord[]): Promise<void> {
    const topic = this.log.topic;
    while (out.length < max) {
      const r = this.reader ?? (await this.openReader());
      r.verifyFrom = this.next;
      const st = r.next();
      if (st === PARSE_OK) {
        const f = r.frame;
        if (f.offset < this.next) continue;
        try {
          out.push(decodeRecord(r.buf, f, topic));
        } catch (err) {
          await this.skipCorrupt(r, err);
          continue;
        }
        this.next = f.offset + 1;
        continue;
      }
      if (st === PARSE_CORRUPT) {
        await this.skipCorrupt(r, null);
        continue;
      }
      const seg = r.segment;
      if (await r.fill(seg.size)) continue;
      // The writer may have added bytes while we awaited: read them first.
      if (r.bufferedTo < seg.size && !r.eof) continue;
      if (r.filePos < seg.size) {
        await this.skipCorrupt(r, new BackboneError('BACKBONE_CORRUPT', 'record cut short'));
        continue;
      }
      if (seg === this.log.active) {
        // At the written end: offsets below endOffset that are not on disk failed to be written.
        this.next = Math.max(this.next, this.log.endOffset);
        return;
      }
      await this.advance(seg);
    }
  }

  /** Closes the open file if it is not the active segment (the next read re-seeks by offset). */
  async releaseIfBehind(): Promise<void> {
    if (this.reader !== null && this.reader.segment !== this.log.active) await this.close();
  }

  async close(): Promise<void> {
    const r = this.reader;
    this.reader = null;
    await r?.close();
  }

  /** Moves on from a fully read closed segment. */
  private async advance(seg: Segment): Promise<void> {
    await this.close();
    const found = this.log.segmentFor(this.next);
    // A different segment for our offset: compaction replaced ours; scan the new one.
    if (found !== seg) return;
    const after = this.log.segmentAfter(seg);
    if (after !== undefined) {
      this.next = Math.max(this.next, after.base);
      this.target = after;
    }
  }

  private async openReader(): Promise<SegmentReader> {
    for (;;) {
      let seg = this.target ?? this.log.segmentFor(this.next);
      const startPos = this.target !== null ? this.resumeAt : 0;
      this.target = null;
      this.resumeAt = 0;
      if (seg === undefined) {
        // Before the first segment: those records were deleted by retention.
        seg = this.log.segments[0];
        if (seg === undefined) throw new BackboneError('BACKBONE_NOT_RUNNING', `backbone topic ${this.log.topic} is not open`);
        this.next = Math.max(this.next, seg.base);
      }
      const r = await SegmentReader.open(seg, startPos);
      if (r !== null) {
        this.reader = r;
        return r;
      }
      // The file is gone (retention, or compaction swapping files): look again once settled.
      await this.log.compactionDone();
      if (this.log.segmentFor(this.next) === seg) {
        const after = this.log.segmentAfter(seg);
        if (after === undefined) throw new BackboneError('BACKBONE_CORRUPT', `backbone segment ${seg.path} vanished`);
        this.next = Math.max(this.next, after.base);
        this.target = after;
      }
    }
  }

  /** Skips the rest of a segment after a corrupt record: data loss, but readers keep going. */
  private async skipCorrupt(r: SegmentReader, err: unknown): Promise<void> {
    const seg = r.segment;
    this.logger.error(
      { err, topic: this.log.topic, segment: seg.path, position: r.filePos, offset: this.next },
      'backbone: corrupt record; skipping the rest of the segment',
    );
    await this.close();
    if (seg === this.log.active) {
      this.next = Math.max(this.next, this.log.endOffset);
      this.target = seg;
      this.resumeAt = seg.size;
      return;
    }
    const after = this.log.segmentAfter(seg);
    if (after !== undefined) {
      this.next = Math.max(this.next, after.base);
      this.target = after;
    }
  }
}
