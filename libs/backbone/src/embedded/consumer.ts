import type { ConsumedRecord, ConsumeOptions } from '../backbone';
import { GroupConsumer, GroupConsumerDeps } from '../group-consumer';
import { LogCursor } from './log-cursor';
import type { TopicLog, WriteListener } from './topic-log';

/** Where group consumers keep their committed offsets (the next offset to consume). */
export interface OffsetStore {
  get(group: string, topic: string): number | undefined;
  commit(group: string, topic: string, next: number): Promise<void>;
}

export interface ConsumerDeps extends GroupConsumerDeps<EmbeddedConsumer> {
  offsets: OffsetStore | null;
}

/** Records handed over from memory are capped (ConsumeOptions.maxBuffered); a consumer further behind reads the files. */
const TAIL_MAX_RECORDS = 100_000;
const RETRY_MAX_MS = 5_000;

/**
 * Delivers a topic's records in offset order: from the segment files while behind, then from
 * memory as the writer hands over written batches (no re-read of what was just written).
 */
export class EmbeddedConsumer extends GroupConsumer<EmbeddedConsumer> implements WriteListener {
  /** caughtUp resolves once `next` reaches this (the log's next offset when we started). */
  private target = Infinity;
  /** The next offset to hand to eachBatch. */
  private next = 0;
  private cursor: LogCursor | null = null;
  /** Written records not delivered yet, contiguous from `next` (at tailIdx). */
  private tail: ConsumedRecord[] = [];
  private tailIdx = 0;
  private lastCommit: Promise<void> = Promise.resolve();
  private committed = -1;

  constructor(
    private readonly log: TopicLog,
    options: ConsumeOptions,
    private readonly deps: ConsumerDeps,
  ) {
    super(options, deps);
  }

  /** After the last batch: stop following the log, close the file, let the last commit land. */
  protected async release(): Promise<void> {
    this.log.listeners.delete(this);
    await this.cursor?.close();
    await this.lastCommit;
  }

  /** From the writer: a written batch (or null: offsets were settled without records). */
  onWritten(records: ConsumedRecord[] | null): void {
    if (records !== null && records.length > 0) {
      const first = records[0]!.offset;
      const queued = this.tail.length - this.tailIdx;
      const end = queued > 0 ? this.tail[this.tail.length - 1]!.offset + 1 : this.next;
      // Only what continues our queue exactly; otherwise the files have it.
      if (first <= end && first + records.length > end && queued + records.length <= (this.options.maxBuffered ?? TAIL_MAX_RECORDS)) {
        for (let i = end - first; i < records.length; i++) this.tail.push(records[i]!);
      }
    }
    this.wakeUp();
  }

  protected position(): void {
    const log = this.log;
    const { group, topic, from } = this.options;
    const committed = group !== undefined ? this.deps.offsets?.get(group, topic) : undefined;
    let start: number;
    if (committed !== undefined) start = committed;
    else if (from === 'earliest') start = log.startOffset;
    else if (from === undefined || from === 'latest') start = log.nextOffset;
    else start = from.find((p) => p.partition === 0)?.offset ?? log.nextOffset;
    // Out of range (deleted by retention, or lost with a torn tail): clamp.
    this.next = Math.min(Math.max(start, log.startOffset), log.nextOffset);
    this.committed = committed ?? -1;
    this.target = log.nextOffset;
    this.cursor = new LogCursor(log, this.next, this.deps.logger);
    log.listeners.add(this);
    this.checkCaughtUp();
  }

  protected async run(): Promise<void> {
    const log = this.log;
    while (!this.stopped) {
      let batch: ConsumedRecord[];
      if (this.tailIdx < this.tail.length) {
        batch = this.takeTail();
        // Do not hold a file open (a deleted segment's disk space) while reading from memory.
        await this.cursor?.releaseIfBehind();
      } else if (this.next < log.endOffset) {
        const cursor = this.cursor!;
        cursor.next = Math.max(cursor.next, this.next);
        batch = [];
        try {
          await cursor.read(this.maxBatch, batch);
        } catch (err) {
          this.deps.logger.error({ err, topic: this.options.topic }, 'backbone: consumer read failed; retrying');
          await this.delivery.pause(RETRY_MAX_MS);
          continue;
        }
        // The cursor may also have skipped offsets that hold no record.
        this.next = Math.max(this.next, cursor.next);
        if (batch.length === 0) {
          this.checkCaughtUp();
          continue;
        }
      } else {
        this.checkCaughtUp();
        await this.sleep();
        continue;
      }
      if (this.stopped) break;
      const last = batch[batch.length - 1]!.offset + 1;
      if (last > this.next) this.next = last;
      if (!(await this.delivery.deliver(batch))) break;
      this.checkCaughtUp();
      this.commit();
    }
  }

  private takeTail(): ConsumedRecord[] {
    const queued = this.tail.length - this.tailIdx;
    let batch: ConsumedRecord[];
    if (this.tailIdx === 0 && queued <= this.maxBatch) {
      batch = this.tail;
      this.tail = [];
    } else {
      batch = this.tail.slice(this.tailIdx, this.tailIdx + this.maxBatch);
      this.tailIdx += batch.length;
      if (this.tailIdx === this.tail.length) {
        this.tail = [];
        this.tailIdx = 0;
      }
    }
    return batch;
  }

  private commit(): void {
    const { group, topic } = this.options;
    const offsets = this.deps.offsets;
    if (group === undefined || offsets === null || this.next === this.committed) return;
    this.committed = this.next;
    // Not awaited before the next batch (the table's writes keep their order); stop() awaits it.
    this.lastCommit = offsets.commit(group, topic, this.next).catch((err: unknown) => {
      this.deps.logger.warn({ err, group, topic }, 'backbone: offset commit failed');
    });
  }

  private checkCaughtUp(): void {
    if (this.next >= this.target) this.caughtUpSignal.resolve();
  }
}
