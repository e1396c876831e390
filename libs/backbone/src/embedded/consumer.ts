import { AsyncLocalStorage } from 'node:async_hooks';
import { BackboneError, type Logger } from '@tributary/common';
import type { ConsumedRecord, Consumer, ConsumeOptions } from '../backbone';
import { LogCursor } from './log-cursor';
import type { TopicLog, WriteListener } from './topic-log';

/** Where group consumers keep their committed offsets (the next offset to consume). */
export interface OffsetStore {
  get(group: string, topic: string): number | undefined;
  commit(group: string, topic: string, next: number): Promise<void>;
}

/**
 * One consumer per group and topic at a time: the embedded backbone has one partition, and a
 * partition belongs to one group member. Later members wait, in order, until the holder stops.
 */
export class GroupLocks {
  private readonly held = new Map<string, { holder: object; queue: Array<{ owner: object; grant: () => void }> }>();

  /** Null if `owner` got the lock now, otherwise a promise that resolves when it does. */
  acquire(key: string, owner: object): Promise<void> | null {
    const lock = this.held.get(key);
    if (lock === undefined) {
      this.held.set(key, { holder: owner, queue: [] });
      return null;
    }
    return new Promise((grant) => lock.queue.push({ owner, grant }));
  }

  /** Releases the lock (or leaves the queue) and hands the lock to the next waiter. */
  release(key: string, owner: object): void {
    const lock = this.held.get(key);
    if (lock === undefined) return;
    if (lock.holder !== owner) {
      lock.queue = lock.queue.filter((w) => w.owner !== owner);
      return;
    }
    const next = lock.queue.shift();
    if (next === undefined) this.held.delete(key);
    else {
      lock.holder = next.owner;
      next.grant();
    }
  }
}

export interface ConsumerDeps {
  offsets: OffsetStore | null;
  locks: GroupLocks;
  logger: Logger;
  onStopped: (c: EmbeddedConsumer) => void;
}

/** Records handed over from memory are capped; a consumer further behind reads the files. */
const TAIL_MAX_RECORDS = 100_000;
const RETRY_MIN_MS = 100;
/** Which consumer's eachBatch we are inside (stop() from there must not wait for itself). */
const inHandler = new AsyncLocalStorage<EmbeddedConsumer>();
const RETRY_MAX_MS = 5_000;

/**
 * Delivers a topic's records in offset order: from the segment files while behind, then from
 * memory as the writer hands over written batches (no re-read of what was just written).
 */
export class EmbeddedConsumer implements Consumer, WriteListener {
  /** Rejects if the consumer is stopped before it caught up. */
  readonly caughtUp: Promise<void>;
  private resolveCaughtUp!: () => void;
  private rejectCaughtUp!: (err: Error) => void;
  private isCaughtUp = false;
  /** caughtUp resolves once `next` reaches this (the log's next offset when we started). */
  private target = Infinity;
  /** The next offset to hand to eachBatch. */
  private next = 0;
  private cursor: LogCursor | null = null;
  /** Written records not delivered yet, contiguous from `next` (at tailIdx). */
  private tail: ConsumedRecord[] = [];
  private tailIdx = 0;
  private wake: (() => void) | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private running: Promise<void> = Promise.resolve();
  private lastCommit: Promise<void> = Promise.resolve();
  private committed = -1;
  private retryTimer: NodeJS.Timeout | null = null;
  private endPause: (() => void) | null = null;
  private readonly maxBatch: number;
  private readonly lockKey: string;

  constructor(
    private readonly log: TopicLog,
    private readonly options: ConsumeOptions,
    private readonly deps: ConsumerDeps,
  ) {
    this.caughtUp = new Promise((resolve, reject) => {
      this.resolveCaughtUp = resolve;
      this.rejectCaughtUp = reject;
    });
    // Nobody has to listen: a consumer stopped early must not cause an unhandled rejection.
    this.caughtUp.catch(() => undefined);
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
    this.lockKey = JSON.stringify([options.group ?? '', options.topic]);
  }

  /** Fixes the start position now if possible (so 'latest' means "after what exists now"). */
  begin(): void {
    const group = this.options.group;
    const wait = group === undefined ? null : this.deps.locks.acquire(this.lockKey, this);
    if (wait === null) {
      this.position();
      this.running = this.run();
    } else {
      this.running = wait.then(() => {
        if (this.stopped) return;
        this.position();
        return this.run();
      });
    }
  }

  /**
   * Stops delivering; resolves after the batch in progress finished and its offset was committed.
   * Called from inside this consumer's own eachBatch it resolves at once (the rest follows).
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    if (inHandler.getStore() === this) return Promise.resolve();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.endPause?.();
    this.wakeUp();
    await this.running;
    this.log.listeners.delete(this);
    await this.cursor?.close();
    await this.lastCommit;
    if (!this.isCaughtUp) this.rejectCaughtUp(new BackboneError('BACKBONE_NOT_RUNNING', `consumer of ${this.options.topic} stopped before it caught up`));
    if (this.options.group !== undefined) this.deps.locks.release(this.lockKey, this);
    this.deps.onStopped(this);
  }

  /** From the writer: a written batch (or null: offsets were settled without records). */
  onWritten(records: ConsumedRecord[] | null): void {
    if (records !== null && records.length > 0) {
      const first = records[0]!.offset;
      const queued = this.tail.length - this.tailIdx;
      const end = queued > 0 ? this.tail[this.tail.length - 1]!.offset + 1 : this.next;
      // Only what continues our queue exactly; otherwise the files have it.
      if (first <= end && first + records.length > end && queued + records.length <= TAIL_MAX_RECORDS) {
        for (let i = end - first; i < records.length; i++) this.tail.push(records[i]!);
      }
    }
    this.wakeUp();
  }

  private position(): void {
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

  private async run(): Promise<void> {
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
          await this.pause(RETRY_MAX_MS);
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
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      if (this.stopped) break;
      const last = batch[batch.length - 1]!.offset + 1;
      if (last > this.next) this.next = last;
      if (!(await this.deliver(batch))) break;
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

  /**
   * Calls eachBatch until it succeeds (at-least-once, in order), backing off between failures.
   * False if the consumer was stopped before the batch succeeded (it is then not committed).
   */
  private async deliver(batch: ConsumedRecord[]): Promise<boolean> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        await inHandler.run(this, () => this.options.eachBatch(batch));
        return true;
      } catch (err) {
        if (this.stopped) return false;
        this.deps.logger.error(
          { err, topic: this.options.topic, group: this.options.group, offset: batch[0]?.offset, retryInMs: delay },
          'backbone: eachBatch failed; redelivering the batch',
        );
        await this.pause(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        if (this.stopped) return false;
      }
    }
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
    if (this.isCaughtUp || this.next < this.target) return;
    this.isCaughtUp = true;
    this.resolveCaughtUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Waits `ms` (ended early only by stop()). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.endPause = () => {
        this.endPause = null;
        resolve();
      };
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.endPause?.();
      }, ms);
    });
  }
}
