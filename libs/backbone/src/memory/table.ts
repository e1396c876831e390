import type { ProducerRecord } from '../backbone';
import { MapTable } from '../map-table';
import type { MemoryTopic } from './topic';

/**
 * A compacted memory topic as a Map. Changes update the Map at once and resolve when the turn's
 * records are flushed. It follows its topic like a Kafka table: records written by anyone else
 * (another MemoryBackbone over the same storage, or append() to the table's topic) are applied
 * and reported to `onRemoteChange`, unless an own write to the key came after them.
 */
export class MemoryTable extends MapTable {
  /** Offset of this table's latest write per key, until the follower has passed it. */
  private readonly own = new Map<string, number>();
  /** The next offset the follower reads. */
  private read: number;
  private readonly follow = (): void => this.onFlushed();

  constructor(
    name: string,
    private readonly topic: MemoryTopic,
  ) {
    super(name);
    for (const { record: r } of topic.read(topic.startOffset, Infinity)) {
      if (r.key !== null) this.put(r.key, r.value, r.offset);
    }
    this.read = topic.end;
    topic.listeners.add(this.follow);
  }

  /** One append: the changes become visible to other readers together. */
  apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    const records: ProducerRecord[] = [];
    for (const [key, value] of changes) {
      // An own write has no offset until it is acknowledged (Table.offsetOf), as on Kafka.
      this.put(key, value, undefined);
      records.push({ key, value });
    }
    const first = this.topic.nextOffset;
    const written = this.topic.append(this.name, records, this);
    records.forEach((r, i) => this.own.set(r.key!, first + i));
    return written.then(() => records.forEach((r, i) => this.written(r.key!, r.value, first + i)));
  }

  /** Resolves once every record written to the table before the call has been applied here. */
  sync(): Promise<void> {
    return this.topic.flushed();
  }

  /** Stops following the topic (the backbone's stop() does this). */
  close(): void {
    this.topic.listeners.delete(this.follow);
  }

  private onFlushed(): void {
    for (const { record: r, writer } of this.topic.read(this.read, Infinity)) {
      this.read = r.offset + 1;
      if (writer === this || r.key === null) continue;
      const mine = this.own.get(r.key);
      // An own write made after this record was appended supersedes it.
      if (mine !== undefined && mine > r.offset) continue;
      this.put(r.key, r.value, r.offset);
      this.onRemoteChange?.(r.key, r.value, r.offset);
    }
    this.read = Math.max(this.read, this.topic.end);
    for (const [key, offset] of this.own) if (offset < this.read) this.own.delete(key);
  }
}
