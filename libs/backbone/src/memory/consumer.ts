import type { Logger } from '@tributary/common';
import type { Consumer, ConsumeOptions } from '../backbone';
import { BatchDelivery, CaughtUpSignal, insideHandlerOf } from '../batch-delivery';
import type { GroupLocks } from '../embedded/consumer';
import type { MemoryTopic } from './topic';

export interface MemoryConsumerDeps {
  /** Committed offsets (the next offset to consume), keyed by [group, topic]; shared by every instance over the same storage. */
  offsets: Map<string, number>;
  locks: GroupLocks;
  logger: Logger;
  onStopped: (c: MemoryConsumer) => void;
}

/**
 * Delivers a memory topic's records in offset order, one batch at a time (the next batch waits
 * for the handler). With a group: one member per group and topic at a time (one partition),
 * resuming after the committed offset, committed after each batch.
 */
export class MemoryConsumer implements Consumer {
  /** Rejects if the consumer is stopped before it caught up. */
  readonly caughtUp: Promise<void>;
  private readonly caughtUpSignal = new CaughtUpSignal();
  private readonly delivery: BatchDelivery;
  private target = Infinity;
  /** The next offset to hand to eachBatch. */
  private next = 0;
  private wake: (() => void) | null = null;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private running: Promise<void> = Promise.resolve();
  private readonly maxBatch: number;
  private readonly key: string;
  private readonly onFlush = (): void => this.wakeUp();

  constructor(
    private readonly topic: MemoryTopic,
    private readonly options: ConsumeOptions,
    private readonly deps: MemoryConsumerDeps,
  ) {
    this.caughtUp = this.caughtUpSignal.promise;
    this.delivery = new BatchDelivery(this, options, deps.logger);
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? 500));
    this.key = JSON.stringify([options.group ?? '', options.topic]);
  }

  /** Fixes the start position now if the group lock is free (so 'latest' means "after what exists now"). */
  begin(): void {
    const wait = this.options.group === undefined ? null : this.deps.locks.acquire(this.key, this);
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

  /** Resolves after the batch in progress finished; from inside this consumer's own eachBatch, at once. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    if (insideHandlerOf(this)) return Promise.resolve();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.delivery.stop();
    this.wakeUp();
    await this.running;
    this.topic.listeners.delete(this.onFlush);
    this.caughtUpSignal.stopped(this.options.topic);
    if (this.options.group !== undefined) this.deps.locks.release(this.key, this);
    this.deps.onStopped(this);
  }

  private position(): void {
    const t = this.topic;
    const { group, from } = this.options;
    const committed = group === undefined ? undefined : this.deps.offsets.get(this.key);
    let start: number;
    if (committed !== undefined) start = committed;
    else if (from === 'earliest') start = t.startOffset;
    else if (from === undefined || from === 'latest') start = t.nextOffset;
    else start = from.find((p) => p.partition === 0)?.offset ?? t.nextOffset;
    // Out of range (removed by retention, or never written): clamp, as the embedded backbone does.
    this.next = Math.min(Math.max(start, t.startOffset), t.nextOffset);
    this.target = t.nextOffset;
    t.listeners.add(this.onFlush);
  }

  private async run(): Promise<void> {
    // The first batch comes after consume() returned, as with the other backbones.
    await Promise.resolve();
    while (!this.stopped) {
      const batch = this.topic.read(this.next, this.maxBatch).map((s) => s.record);
      if (batch.length === 0) {
        // Compaction may have removed the records up to the end.
        this.next = Math.max(this.next, this.topic.end);
        this.checkCaughtUp();
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.next = batch[batch.length - 1]!.offset + 1;
      if (!(await this.delivery.deliver(batch))) break;
      this.checkCaughtUp();
      if (this.options.group !== undefined) this.deps.offsets.set(this.key, this.next);
    }
  }

  private checkCaughtUp(): void {
    if (this.next >= this.target) this.caughtUpSignal.resolve();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
