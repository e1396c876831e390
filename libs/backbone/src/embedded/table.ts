import { MapTable } from '../map-table';
import type { Logger } from '@tributary/common';
import type { ConsumedRecord, ProducerRecord } from '../backbone';
import { LogCursor } from './log-cursor';
import type { TopicLog } from './topic-log';

/** Compaction runs when the log holds more than this many records and more than 2× the live keys. */
const COMPACT_MIN_RECORDS = 1000;

const done = (): void => undefined;

/**
 * A compacted topic read into a Map at open. Changes update the Map at once (readers see them
 * immediately) and append to the log through the same group commit as append(); the promise
 * says when the change is durable. Write the topic only through its table.
 */
export class EmbeddedTable extends MapTable {
  /** Records in the log (an estimate after compaction): drives when to compact. */
  private logRecords = 0;
  /** After a failed compaction, wait until the log has grown this far before trying again. */
  private retryAt = 0;

  private constructor(
    name: string,
    private readonly log: TopicLog,
    private readonly logger: Logger,
  ) {
    super(name);
  }

  /** Loads the table from its log (last value per key wins; null values delete). */
  static async open(name: string, log: TopicLog, logger: Logger): Promise<EmbeddedTable> {
    await log.ready;
    const table = new EmbeddedTable(name, log, logger);
    const cursor = new LogCursor(log, log.startOffset, logger);
    try {
      const batch: ConsumedRecord[] = [];
      while (cursor.next < log.endOffset) {
        batch.length = 0;
        await cursor.read(4096, batch);
        for (const r of batch) {
          table.logRecords++;
          if (r.key !== null) table.put(r.key, r.value, r.offset);
        }
        if (batch.length === 0) break;
      }
    } finally {
      await cursor.close();
    }
    if (table.needsCompaction()) await table.compactLogged();
    return table;
  }

  override set(key: string, value: Buffer): Promise<void> {
    this.put(key, value, undefined);
    return this.write([{ key, value }]);
  }

  override delete(key: string): Promise<void> {
    this.put(key, null, undefined);
    return this.write([{ key, value: null }]);
  }

  apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    const records: ProducerRecord[] = [];
    for (const [key, value] of changes) {
      this.put(key, value, undefined);
      records.push({ key, value });
    }
    // One append() call: one write, and all-or-nothing after a crash.
    return this.write(records);
  }

  /** Rewrites the log to the latest value per key (runs on its own when the log grows). */
  async compact(): Promise<void> {
    const before = this.logRecords;
    const kept = await this.log.compact();
    if (kept !== null) this.logRecords = kept + Math.max(0, this.logRecords - before);
  }

  private write(records: ProducerRecord[]): Promise<void> {
    this.logRecords += records.length;
    const appended = this.log.append(records);
    if (this.needsCompaction()) void this.compactLogged();
    return appended.then((positions) => records.forEach((r, i) => this.written(r.key!, r.value, positions[i]!.offset))).then(done);
  }

  private async compactLogged(): Promise<void> {
    try {
      await this.compact();
    } catch (err) {
      this.retryAt = this.logRecords * 2;
      this.logger.warn({ err, table: this.name }, 'backbone: table compaction failed');
    }
  }

  private needsCompaction(): boolean {
    const n = this.logRecords;
    return n > COMPACT_MIN_RECORDS && n > 2 * this.map.size && n >= this.retryAt && !this.log.compacting;
  }
}
