import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackboneError, type Logger } from '@tributary/common';
import type { ConsumedRecord, ProducerRecord, RecordPosition } from '../backbone';
import { asError, consumedRecords, encodeCalls, positions, sharedWrite, type PendingCall, type SharedWrite } from './append-batch';
import { compactSegments } from './compaction';
import { fsyncDir, listSegments, loadTopicConfig, recoverLastSegment, segmentFileName, type TopicConfig } from './files';
import type { Segment } from './segment-reader';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface TopicLogOptions {
  /** The topic's directory. */
  dir: string;
  /** Logical topic name (what ConsumedRecord.topic says). */
  topic: string;
  /** Config for a topic created now; an existing topic keeps its stored config. */
  config: TopicConfig;
  fsync: FsyncPolicy;
  segmentBytes: number;
  logger: Logger;
}

/** Told about every written batch, in offset order. */
export interface WriteListener {
  /** The batch's records (contiguous offsets), or null when some offsets were not written (failures). */
  onWritten(records: ConsumedRecord[] | null): void;
}

/** The encode buffer is reused between batches up to this size (bigger batches allocate). */
const MAX_SCRATCH = 16 * 1024 * 1024;

const NOTHING = (): void => undefined;

/**
 * One topic's partition 0: an append-only sequence of segment files.
 * All file writes go through one serialized writer loop (`drain`): it turns every append() call
 * pending at that moment into one buffer and one write, and also performs rolls and fsyncs.
 */
export class TopicLog {
  readonly ready: Promise<void>;
  readonly listeners = new Set<WriteListener>();
  config: TopicConfig;
  segments: Segment[] = [];
  /** The next offset append() assigns. */
  nextOffset = 0;
  /** Every offset below this is settled: written (readable up to the active segment's size) or failed. */
  endOffset = 0;

  private isReady = false;
  private fh: FileHandle | null = null;
  private preOpen: Array<{ records: readonly ProducerRecord[]; resolve: (p: RecordPosition[]) => void; reject: (e: Error) => void }> = [];
  private pending: PendingCall[] = [];
  /** The promise of the appendShared() calls in `pending`. */
  private sharedWrite: SharedWrite | undefined;
  private scheduled = false;
  private loop: Promise<void> | null = null;
  private dirty = false;
  private syncRequested = false;
  /** A background 'interval' fsync in progress (the file is not closed under it). */
  private syncing: Promise<void> | null = null;
  private rollWaiters: Array<{ resolve: (base: number) => void; reject: (e: Error) => void }> = [];
  private closing = false;
  private closed: Promise<void> | null = null;
  private failed: Error | null = null;
  private compaction: Promise<number | null> | null = null;
  private scratch = Buffer.allocUnsafe(64 * 1024);

  constructor(private readonly options: TopicLogOptions) {
    this.config = options.config;
    this.ready = this.open();
    this.ready.catch(() => undefined);
  }

  get topic(): string {
    return this.options.topic;
  }

  get dir(): string {
    return this.options.dir;
  }

  get active(): Segment {
    const s = this.segments[this.segments.length - 1];
    if (s === undefined) throw new BackboneError('BACKBONE_NOT_RUNNING', `topic ${this.topic} is not open`);
    return s;
  }

  /** The oldest offset still stored. */
  get startOffset(): number {
    return this.segments[0]?.base ?? this.nextOffset;
  }

  private async open(): Promise<void> {
    const { dir, logger } = this.options;
    try {
      await mkdir(dir, { recursive: true });
      this.config = await loadTopicConfig(dir, this.options.config);
      this.segments = await listSegments(dir);
      if (this.segments.length === 0) {
        const now = Date.now();
        this.segments.push({ base: 0, path: join(dir, segmentFileName(0)), size: 0, createdAt: now, lastWriteAt: now });
      }
      this.nextOffset = await recoverLastSegment(this.active, logger);
      this.endOffset = this.nextOffset;
      this.fh = await open(this.active.path, 'a');
      // A new topic: make its directory entry and its first segment's name durable.
      await fsyncDir(dir);
      await fsyncDir(dirname(dir));
      this.isReady = true;
    } catch (err) {
      const e = asError(err);
      for (const p of this.preOpen) p.reject(e);
      this.preOpen = [];
      throw e;
    }
    // Calls accepted while opening keep their order (and are written even if close() began).
    const queued = this.preOpen;
    this.preOpen = [];
    for (const q of queued) this.enqueue(q.records).then(q.resolve, q.reject);
  }

  /** The offset the next appended record gets, when append() would assign it at once. */
  get assignableOffset(): number | undefined {
    return this.isReady && !this.closing && this.failed === null ? this.nextOffset : undefined;
  }

  /** Assigns offsets now (call order) and resolves once the records are written (see FsyncPolicy). */
  append(records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    if (this.closing) return Promise.reject(new BackboneError('BACKBONE_NOT_RUNNING', `backbone topic ${this.topic} is closed`));
    if (this.failed !== null) return Promise.reject(this.failed);
    if (!this.isReady) {
      return new Promise((resolve, reject) => this.preOpen.push({ records, resolve, reject }));
    }
    return this.enqueue(records);
  }

  private enqueue(records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    const count = records.length;
    if (count === 0) return Promise.resolve([]);
    const first = this.nextOffset;
    this.nextOffset += count;
    const now = Date.now();
    return new Promise((resolve, reject) => {
      this.pending.push({ records, count, first, now, resolve, reject, failed: false, shared: false });
      this.schedule();
    });
  }

  /** append() without positions: the calls of one batch share one promise (Backbone.appendShared). */
  appendShared(records: readonly ProducerRecord[]): Promise<void> {
    const count = records.length;
    if (this.assignableOffset === undefined || count === 0) return this.append(records).then(NOTHING);
    const write = (this.sharedWrite ??= sharedWrite());
    const first = this.nextOffset;
    this.nextOffset += count;
    this.pending.push({ records, count, first, now: Date.now(), resolve: NOTHING, reject: write.reject, failed: false, shared: true });
    this.schedule();
    return write.promise;
  }

  /** Asks the writer to fsync if anything was written since the last fsync ('interval' policy). */
  requestSync(): void {
    if (!this.dirty || this.closing) return;
    this.syncRequested = true;
    this.schedule();
  }

  /** Closes the active segment (if not empty); resolves the base offset of the new active one. */
  requestRoll(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.rollWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** The segment that holds `offset` (the last with base <= offset); undefined before the first. */
  segmentFor(offset: number): Segment | undefined {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    let found: Segment | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segs[mid]!;
      if (s.base <= offset) {
        found = s;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The first segment after `segment` (by base offset). */
  segmentAfter(segment: Segment): Segment | undefined {
    return this.segments.find((s) => s.base > segment.base);
  }

  /** Resolves when no compaction is running (readers wait on it when a segment file vanished). */
  async compactionDone(): Promise<void> {
    await this.compaction?.catch(() => undefined);
  }

  get compacting(): boolean {
    return this.compaction !== null;
  }

  /**
   * Compacts everything written so far (rolling the active segment first). Resolves how many
   * records the compacted segment holds, or null if there was nothing to compact. One at a time:
   * a call during a compaction runs another one after it.
   */
  compact(): Promise<number | null> {
    if (this.compaction !== null) return this.compaction.catch(() => null).then(() => this.compact());
    if (this.closing) return Promise.resolve(null);
    const run = async (): Promise<number | null> => {
      const end = await this.requestRoll();
      const closed = this.segments.filter((s) => s.base < end);
      if (closed.length === 0) return null;
      const { segment, kept } = await compactSegments(this.dir, closed, end);
      const rest = this.segments.filter((s) => s.base >= end);
      this.segments = segment === null ? rest : [segment, ...rest];
      this.options.logger.debug({ topic: this.topic, segments: closed.length, kept }, 'backbone: compacted');
      return kept;
    };
    const p = run().finally(() => {
      this.compaction = null;
    });
    this.compaction = p;
    return p;
  }

  /** Deletes whole old segments of a 'delete' topic (never the active one). Synchronous bookkeeping. */
  applyRetention(now = Date.now()): void {
    const { cleanup, retentionMs, retentionBytes } = this.config;
    if (cleanup !== 'delete' || !this.isReady || this.closing) return;
    if (retentionMs === undefined && retentionBytes === undefined) return;
    let total = 0;
    for (const s of this.segments) total += s.size;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const tooBig = retentionBytes !== undefined && total > retentionBytes;
      const tooOld = retentionMs !== undefined && oldest.lastWriteAt < now - retentionMs;
      if (!tooBig && !tooOld) break;
      // Drop it from the list first: readers that still have it open keep reading it.
      this.segments.shift();
      total -= oldest.size;
      this.options.logger.debug({ topic: this.topic, segment: oldest.path, tooBig, tooOld }, 'backbone: retention');
      unlink(oldest.path).catch((err: unknown) =>
        this.options.logger.warn({ err, segment: oldest.path }, 'backbone: could not delete a segment'),
      );
    }
    // An active segment holding expired records is rolled so the next check can delete it.
    const active = this.active;
    if (retentionMs !== undefined && active.size > 0 && active.createdAt < now - retentionMs) {
      this.requestRoll().catch((err: unknown) => this.options.logger.warn({ err }, 'backbone: roll failed'));
    }
  }

  /** Writes everything accepted so far, fsyncs and closes the file. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    // Refuse new appends and compactions; finish what was accepted.
    this.closing = true;
    await this.ready.catch(() => undefined);
    await this.compactionDone();
    for (;;) {
      if (this.loop !== null) await this.loop;
      else if (this.pending.length > 0 || this.rollWaiters.length > 0) this.kick();
      else break;
    }
    const fh = this.fh;
    this.fh = null;
    if (this.syncing !== null) await this.syncing;
    if (fh !== null) {
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
  }

  private schedule(): void {
    if (this.scheduled || this.loop !== null) return;
    this.scheduled = true;
    setImmediate(this.kick);
  }

  private readonly kick = (): void => {
    this.scheduled = false;
    if (this.loop !== null) return;
    this.loop = this.drain().finally(() => {
      this.loop = null;
      if (this.pending.length > 0 || this.rollWaiters.length > 0 || this.syncRequested) this.schedule();
    });
  };

  /** The writer loop: one batch write, roll or fsync at a time. Never rejects. */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.pending.length > 0) {
        const calls = this.pending;
        const shared = this.sharedWrite;
        this.pending = [];
        this.sharedWrite = undefined;
        await this.writeBatch(calls);
        // After a failure every call rejected it already; settling twice changes nothing.
        shared?.resolve();
      } else if (this.rollWaiters.length > 0) {
        const waiters = this.rollWaiters;
        this.rollWaiters = [];
        try {
          if (this.active.size > 0) await this.roll();
          for (const w of waiters) w.resolve(this.active.base);
        } catch (err) {
          this.fail(err);
          for (const w of waiters) w.reject(asError(err));
        }
      } else if (this.syncRequested) {
        this.syncRequested = false;
        if (this.dirty && this.fh !== null && this.syncing === null) {
          this.dirty = false;
          // 'interval' promises nothing per write, so writes go on while the fsync runs: awaiting
          // it here stalled every acknowledgement for the length of an fsync (tens of ms on a VM disk).
          this.syncing = this.fh
            .datasync()
            .catch((err: unknown) => this.fail(err))
            .finally(() => {
              this.syncing = null;
            });
        }
      } else return;
    }
  }

  private async writeBatch(calls: PendingCall[]): Promise<void> {
    const last = calls[calls.length - 1]!;
    const end = last.first + last.count;
    const { buf, len, anyFailed } = encodeCalls(calls, this.scratchOf);
    try {
      if (this.failed !== null) throw this.failed;
      if (len > 0) {
        if (this.active.size > 0 && this.active.size + len > this.options.segmentBytes) await this.roll();
        await this.write(buf, len);
      }
    } catch (err) {
      // Offsets [first, end) are given up; later batches continue after them.
      this.endOffset = end;
      for (const c of calls) if (!c.failed) c.reject(asError(err));
      this.notify(calls, true);
      return;
    }
    // Size and endOffset change together (no await between): readers rely on it.
    const active = this.active;
    active.size += len;
    active.lastWriteAt = Date.now();
    this.endOffset = end;
    this.notify(calls, anyFailed);
    for (const c of calls) if (!c.failed && !c.shared) c.resolve(positions(c.first, c.count));
  }

  /** One write (looping on short writes), then fsync for 'always'. Restores the file on failure; the caller updates the size. */
  private async write(buf: Buffer, len: number): Promise<void> {
    const fh = this.fh;
    const active = this.active;
    if (fh === null) throw new BackboneError('BACKBONE_NOT_RUNNING', `backbone topic ${this.topic} is closed`);
    try {
      let done = 0;
      // Opened with O_APPEND: the position argument is ignored, we track the size ourselves.
      while (done < len) done += (await fh.write(buf, done, len - done, null)).bytesWritten;
      if (this.options.fsync === 'always') await fh.datasync();
      else this.dirty = true;
    } catch (err) {
      // Cut a partial write off so later batches are not hidden behind a torn record.
      try {
        await fh.truncate(active.size);
      } catch (truncErr) {
        this.fail(truncErr);
      }
      throw err;
    }
  }

  /** Hands a written batch to tailing consumers (records are only built if someone listens). */
  private notify(calls: PendingCall[], incomplete: boolean): void {
    if (this.listeners.size === 0) return;
    const records = incomplete ? null : consumedRecords(this.topic, calls);
    for (const l of this.listeners) l.onWritten(records);
  }

  /** The reused encode buffer, grown as needed (a one-off allocation beyond MAX_SCRATCH). */
  private readonly scratchOf = (bytes: number): Buffer => {
    if (bytes <= this.scratch.length) return this.scratch;
    const buf = Buffer.allocUnsafe(Math.max(bytes, this.scratch.length * 2));
    if (buf.length <= MAX_SCRATCH) this.scratch = buf;
    return buf;
  };

  /** Starts a new segment at endOffset. The old one is fsynced first, so only the last can be torn. */
  private async roll(): Promise<void> {
    const old = this.active;
    const fh = this.fh;
    if (fh === null) throw new BackboneError('BACKBONE_NOT_RUNNING', `backbone topic ${this.topic} is closed`);
    this.fh = null;
    if (this.syncing !== null) await this.syncing;
    const base = this.endOffset;
    const now = Date.now();
    const seg: Segment = { base, path: join(this.dir, segmentFileName(base)), size: 0, createdAt: now, lastWriteAt: now };
    try {
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.dirty = false;
      this.fh = await open(seg.path, 'a');
      await fsyncDir(this.dir);
    } catch (err) {
      // Without an open segment nothing more can be written.
      this.fail(err);
      throw err;
    }
    this.segments.push(seg);
    this.options.logger.debug({ topic: this.topic, closed: old.path, base }, 'backbone: rolled segment');
    this.applyRetention(now);
  }

  private fail(err: unknown): void {
    if (this.failed !== null) return;
    this.failed = asError(err);
    this.options.logger.error({ err: this.failed, topic: this.topic }, 'backbone: topic log failed; appends will be rejected');
  }
}
