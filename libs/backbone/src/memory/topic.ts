import type { ConsumedRecord, ProducerRecord, RecordPosition, TopicSpec } from '../backbone';

/** A record as the memory backbone keeps it: who appended it (a table, or null) and its size for retention. */
interface StoredRecord {
  record: ConsumedRecord;
  /** The table that wrote it (its own writes are not "remote" to it); null for append(). */
  writer: object | null;
  bytes: number;
  appendedAt: number;
}

export type MemoryTopicConfig = Pick<TopicSpec, 'cleanup' | 'retentionMs' | 'retentionBytes'>;

/** Compaction runs when a compacted topic holds more than this many records and more than 2× its live keys. */
const COMPACT_MIN_RECORDS = 1000;
/** Dropped records are cut from the front of the array once they are this many (not on every drop). */
const SHIFT_AT = 4096;

/**
 * One topic (partition 0) held in memory. Offsets are assigned in append() itself, in call
 * order; once per event-loop turn the turn's records become visible to consumers together and
 * their append() promises resolve (the embedded backbone's group commit, without the write).
 */
export class MemoryTopic {
  private records: StoredRecord[] = [];
  /** Index in `records` of the oldest record not removed by retention. */
  private head = 0;
  private bytes = 0;
  /** The offset the next appended record gets. */
  nextOffset = 0;
  /** Consumers see records below this offset (the end of the last flushed turn). */
  end = 0;
  private pending: Array<() => void> = [];
  private scheduled = false;
  /** Called after each flush, with the new records visible. */
  readonly listeners = new Set<() => void>();
  /** Compacted topics: the offset of the latest record per live key. */
  private readonly latest = new Map<string, number>();

  constructor(readonly config: MemoryTopicConfig) {}

  /** The oldest offset still held (retention and compaction remove older ones). */
  get startOffset(): number {
    return this.records[this.head]?.record.offset ?? this.nextOffset;
  }

  append(topic: string, records: readonly ProducerRecord[], writer: object | null): Promise<RecordPosition[]> {
    if (records.length === 0) return Promise.resolve([]);
    const now = Date.now();
    const positions: RecordPosition[] = [];
    for (const r of records) {
      const offset = this.nextOffset++;
      const record: ConsumedRecord = { topic, partition: 0, offset, key: r.key, value: r.value, headers: { ...r.headers }, timestamp: r.timestamp ?? now };
      this.records.push({ record, writer, bytes: recordBytes(r), appendedAt: now });
      this.bytes += this.records[this.records.length - 1]!.bytes;
      if (this.config.cleanup === 'compact' && r.key !== null) {
        if (r.value === null) this.latest.delete(r.key);
        else this.latest.set(r.key, offset);
      }
      positions.push({ partition: 0, offset });
    }
    return new Promise((resolve) => {
      this.pending.push(() => resolve(positions));
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Resolves after the records accepted so far are visible (at once when none wait). */
  flushed(): Promise<void> {
    if (this.end === this.nextOffset) return Promise.resolve();
    return new Promise((resolve) => this.pending.push(resolve));
  }

  /** Makes every accepted record visible, resolves their appends and wakes the readers. */
  flush(): void {
    this.scheduled = false;
    if (this.end === this.nextOffset && this.pending.length === 0) return;
    this.end = this.nextOffset;
    const pending = this.pending;
    this.pending = [];
    for (const l of [...this.listeners]) l();
    for (const resolve of pending) resolve();
    this.applyRetention(Date.now());
    this.compactIfNeeded();
  }

  /**
   * Up to `max` visible records from offset `from` on, in order, with who wrote them. Fewer than
   * asked (or none) when `from` reaches `end`; offsets may skip over compacted records.
   */
  read(from: number, max: number): Array<{ record: ConsumedRecord; writer: object | null }> {
    const out: Array<{ record: ConsumedRecord; writer: object | null }> = [];
    for (let i = this.indexOf(from); i < this.records.length && out.length < max; i++) {
      const s = this.records[i]!;
      if (s.record.offset >= this.end) break;
      out.push(s);
    }
    return out;
  }

  /** Drops the oldest visible records past retentionBytes or older than retentionMs (delete topics). */
  applyRetention(now: number): void {
    const { cleanup, retentionBytes, retentionMs } = this.config;
    if (cleanup !== 'delete' || (retentionBytes === undefined && retentionMs === undefined)) return;
    while (this.head < this.records.length) {
      const s = this.records[this.head]!;
      const tooBig = retentionBytes !== undefined && this.bytes > retentionBytes;
      const tooOld = retentionMs !== undefined && s.appendedAt < now - retentionMs;
      if (s.record.offset >= this.end || (!tooBig && !tooOld)) break;
      this.bytes -= s.bytes;
      this.head++;
    }
    if (this.head >= SHIFT_AT && this.head * 2 >= this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }

  /** Keeps only the latest record per key, without deleted keys; records keep their offsets. */
  private compactIfNeeded(): void {
    const held = this.records.length - this.head;
    if (this.config.cleanup !== 'compact' || held <= COMPACT_MIN_RECORDS || held <= 2 * this.latest.size) return;
    this.records = this.records.filter((s, i) => i >= this.head && s.record.key !== null && this.latest.get(s.record.key) === s.record.offset);
    this.head = 0;
    this.bytes = this.records.reduce((n, s) => n + s.bytes, 0);
  }

  /** Index of the first held record with an offset of at least `offset` (binary search: offsets grow). */
  private indexOf(offset: number): number {
    let lo = this.head;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.record.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** About what the record costs in memory: key, value and headers, plus a fixed overhead. */
function recordBytes(r: ProducerRecord): number {
  let n = 64 + (r.value?.length ?? 0) + (r.key === null ? 0 : Buffer.byteLength(r.key));
  for (const k in r.headers) n += k.length + (r.headers[k]?.length ?? 0);
  return n;
}
