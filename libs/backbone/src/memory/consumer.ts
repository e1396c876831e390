import type { ConsumeOptions } from '../backbone';
import { GroupConsumer, GroupConsumerDeps } from '../group-consumer';
import type { MemoryTopic } from './topic';

export interface MemoryConsumerDeps extends GroupConsumerDeps<MemoryConsumer> {
  /** Committed offsets (the next offset to consume), keyed by [group, topic]; shared by every instance over the same storage. */
  offsets: Map<string, number>;
}

/**
 * Delivers a memory topic's records in offset order, one batch at a time (the next batch waits
 * for the handler). With a group: one member per group and topic at a time (one partition),
 * resuming after the committed offset, committed after each batch.
 */
export class MemoryConsumer extends GroupConsumer<MemoryConsumer> {
  private target = Infinity;
  /** The next offset to hand to eachBatch. */
  private next = 0;
  private readonly onFlush = (): void => this.wakeUp();

  constructor(
    private readonly topic: MemoryTopic,
    options: ConsumeOptions,
    private readonly deps: MemoryConsumerDeps,
  ) {
    super(options, deps);
  }

  protected release(): void {
    this.topic.listeners.delete(this.onFlush);
  }

  protected position(): void {
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

  protected async run(): Promise<void> {
    // The first batch comes after consume() returned, as with the other backbones.
    await Promise.resolve();
    while (!this.stopped) {
      const batch = this.topic.read(this.next, this.maxBatch).map((s) => s.record);
      if (batch.length === 0) {
        // Compaction may have removed the records up to the end.
        this.next = Math.max(this.next, this.topic.end);
        this.checkCaughtUp();
        await this.sleep();
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
}
