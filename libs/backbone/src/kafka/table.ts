import { MapTable } from '../map-table';
import type { ConsumedRecord, Consumer, ProducerRecord, RecordPosition } from '../backbone';
import { BackboneError } from '@tributary/common';

/** Local writes to one key that the follower has not caught up with yet. */
interface PendingKey {
  /** Writes not acknowledged yet. */
  inFlight: number;
  /** Offset of our latest acknowledged write (-1: none). */
  offset: number;
  /** The newest record read for the key while writes were in flight. */
  deferred?: ConsumedRecord;
}

export interface TableIo {
  append(records: ProducerRecord[]): Promise<RecordPosition[]>;
  /** Follows the table's topic from the earliest record; `onRecords` gets every batch. */
  follow(onRecords: (records: ConsumedRecord[]) => void): Promise<Consumer>;
  /** The topic's high watermark per partition, now. */
  highWatermarks(): Promise<Map<number, number>>;
}

/**
 * A compacted topic kept in a Map: read from the earliest offset up to the high watermark at
 * open, then followed, so changes written by other processes show up here too.
 *
 * Consistency: reads are local. A change made here is visible at once (read-your-writes) and
 * durable when its promise resolves. Changes by other processes appear once the follower reads
 * them (one fetch round trip, usually milliseconds). When two processes write the same key, the
 * order in the topic decides: every table converges to the last record in the log, and a stale
 * record read back never overwrites a newer local write.
 */
export class KafkaTable extends MapTable {
  private readonly pending = new Map<string, PendingKey>();
  private follower: Consumer | null = null;
  /** Next offset the follower will read, per partition. */
  private readonly read = new Map<number, number>();
  private syncWaiters: { targets: Map<number, number>; resolve: () => void; reject: (err: Error) => void }[] = [];
  /** A sync() request gathered in this turn and not sent yet. */
  private nextSync: Promise<void> | null = null;

  private constructor(
    name: string,
    private readonly io: TableIo,
  ) {
    super(name);
  }

  static async open(name: string, io: TableIo): Promise<KafkaTable> {
    const table = new KafkaTable(name, io);
    table.follower = await io.follow((records) => table.onRecords(records));
    await table.follower.caughtUp;
    return table;
  }

  /** One append() call. On Kafka it is atomic per partition, not across partitions. */
  apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void> {
    if (changes.length === 0) return Promise.resolve();
    const records: ProducerRecord[] = [];
    const keys = new Set<string>();
    for (const [key, value] of changes) {
      this.put(key, value, undefined);
      records.push({ key, value });
      keys.add(key);
    }
    for (const key of keys) {
      const p = this.pending.get(key);
      if (p === undefined) this.pending.set(key, { inFlight: 1, offset: -1 });
      else p.inFlight++;
    }
    return this.io.append(records).then(
      (positions) => {
        const latest = new Map<string, number>();
        records.forEach((r, i) => {
          latest.set(r.key!, positions[i]!.offset);
          this.written(r.key!, r.value, positions[i]!.offset);
        });
        for (const key of keys) this.settle(key, latest.get(key) ?? -1);
      },
      (err: unknown) => {
        // The local value stays until the next change to the key is read or written.
        for (const key of keys) this.settle(key, -1);
        throw err;
      },
    );
  }

  /**
   * Resolves once this copy has read every record written to the topic before the call, by any
   * process. Callers in one event-loop turn share one watermark request; a request is never
   * shared with a caller that came after it was sent.
   */
  sync(): Promise<void> {
    if (this.nextSync) return this.nextSync;
    const p = new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.nextSync = null;
        this.io.highWatermarks().then((targets) => {
          this.syncWaiters.push({ targets, resolve, reject });
          this.releaseSynced();
        }, reject);
      });
    });
    this.nextSync = p;
    return p;
  }

  private releaseSynced(): void {
    if (this.syncWaiters.length === 0) return;
    this.syncWaiters = this.syncWaiters.filter((w) => {
      for (const [partition, high] of w.targets) if ((this.read.get(partition) ?? 0) < high) return true;
      w.resolve();
      return false;
    });
  }

  /** Stops following the topic (the backbone's stop() does this too); pending sync() calls fail. */
  close(): Promise<void> {
    for (const w of this.syncWaiters.splice(0)) w.reject(new BackboneError('BACKBONE_NOT_RUNNING', `table ${this.name} closed`));
    return this.follower?.stop() ?? Promise.resolve();
  }

  private applyRemote(key: string, value: Buffer | null, offset: number): void {
    // A copy: the client's value is a view of its whole fetch response, which one kept value
    // would keep alive (the table keeps every key's value for as long as the key lives).
    this.put(key, value === null ? null : Buffer.from(value), offset);
    this.onRemoteChange?.(key, value, offset);
  }

  private settle(key: string, offset: number): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    p.inFlight--;
    p.offset = Math.max(p.offset, offset);
    if (p.inFlight > 0) return;
    const d = p.deferred;
    p.deferred = undefined;
    if (d !== undefined && d.offset >= p.offset) {
      // The follower is already past our write: a newer record from elsewhere wins.
      if (d.offset > p.offset) this.applyRemote(key, d.value, d.offset);
      this.pending.delete(key);
    } else if (p.offset < 0) {
      this.pending.delete(key);
    }
  }

  private onRecords(records: ConsumedRecord[]): void {
    for (const r of records) {
      if (r.offset + 1 > (this.read.get(r.partition) ?? 0)) this.read.set(r.partition, r.offset + 1);
      if (r.key === null) continue;
      const p = this.pending.get(r.key);
      if (p === undefined) {
        this.applyRemote(r.key, r.value, r.offset);
      } else if (p.inFlight > 0) {
        // Our write's offset is not known yet: decide when it is acknowledged.
        if (r.offset > p.offset && (p.deferred === undefined || r.offset > p.deferred.offset)) p.deferred = r;
      } else {
        if (r.offset > p.offset) this.applyRemote(r.key, r.value, r.offset);
        if (r.offset >= p.offset) this.pending.delete(r.key);
      }
    }
    this.releaseSynced();
  }
}
