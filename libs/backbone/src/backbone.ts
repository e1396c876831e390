/**
 * The backbone: the only way Tributary services talk to each other and to durable storage.
 * Three implementations share these semantics and one test suite (test/backbone-suite.ts):
 * `embedded` (in-process, durable in node.data_dir), `kafka` (Apache Kafka) and `memory`
 * (in-process, no disk: tests, and brokers that need no durability).
 */

/** Header values are strings (W3C trace context, MQTT metadata). */
export type RecordHeaders = Record<string, string>;

/** A record as a producer hands it to the backbone. */
export interface ProducerRecord {
  /** Partitioning and compaction key; null for un-keyed records. */
  key: string | null;
  /** Null is a tombstone on compacted topics. */
  value: Buffer | null;
  headers?: RecordHeaders;
  /** Milliseconds since the epoch; the backbone stamps `Date.now()` when absent. */
  timestamp?: number;
}

/** Where a record landed. Offsets grow by one per record within a partition. */
export interface RecordPosition {
  partition: number;
  offset: number;
}

/** A record as a consumer sees it. */
export interface ConsumedRecord extends RecordPosition {
  topic: string;
  key: string | null;
  value: Buffer | null;
  headers: RecordHeaders;
  timestamp: number;
}

export type CleanupPolicy = 'delete' | 'compact';

export interface TopicSpec {
  /** Logical name (the backbone adds its configured prefix). */
  name: string;
  cleanup: CleanupPolicy;
  /** Partitions (the embedded backbone always uses one). */
  partitions?: number;
  /** Delete-policy topics: drop whole segments older than this many milliseconds. */
  retentionMs?: number;
  /** Delete-policy topics: drop the oldest segments while the topic is larger than this. */
  retentionBytes?: number;
}

/** Where a consumer starts when its group has no committed offset (or it has no group). */
export type StartPosition = 'earliest' | 'latest' | { partition: number; offset: number }[];

export interface ConsumeOptions {
  topic: string;
  /**
   * Consumer group: committed offsets are kept per group; consumption resumes after them. One
   * topic per group: on Kafka a group's assignment spreads every subscribed topic over all its
   * members, so two consumers of different topics in one group would get each other's partitions.
   */
  group?: string;
  from?: StartPosition;
  /**
   * Called with records in offset order per partition. The next batch is not delivered
   * before the returned promise settles (backpressure). With a group, offsets are
   * committed after the handler resolves.
   */
  eachBatch: (records: ConsumedRecord[]) => Promise<void> | void;
  /** Upper bound on records per batch (default 500). */
  maxBatch?: number;
  /**
   * Embedded backbone: how many just-written records the consumer keeps in memory while its
   * handler is busy (default 100,000); beyond, it reads them back from the files when it gets
   * there. A reader that waits long (a slow session's backlog) keeps it small: each record held
   * keeps its whole write batch alive. Kafka consumers buffer nothing while the handler runs.
   */
  maxBuffered?: number;
}

export interface Consumer {
  /** Resolves once the consumer has delivered every record that existed when it started. */
  readonly caughtUp: Promise<void>;
  /**
   * Stops delivering; resolves once the batch in progress was handled (and committed). Called in
   * the synchronous part of its own eachBatch it resolves at once; a handler that has awaited
   * something must not await its own consumer's stop() (a deadlock), only call it.
   */
  stop(): Promise<void>;
}

/**
 * A compacted key→value table backed by a compacted topic: the latest value per key,
 * loaded in memory at open, every change appended durably before `set`/`delete` resolve.
 */
export interface Table {
  readonly name: string;
  get(key: string): Buffer | undefined;
  has(key: string): boolean;
  readonly size: number;
  entries(): IterableIterator<[string, Buffer]>;
  set(key: string, value: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  /** Apply several changes as one durable write (null = delete). */
  apply(changes: ReadonlyArray<readonly [string, Buffer | null]>): Promise<void>;
  /**
   * Called when a change written by another process is applied here (Kafka; an embedded table
   * has no other writers). Not called for this table's own writes, nor for a record that an
   * own newer write supersedes.
   */
  onRemoteChange: ((key: string, value: Buffer | null, offset: number) => void) | undefined;
  /**
   * The offset, in the table's topic, of the record holding the key's current value, so a reader
   * can say which record it could not decode; undefined for a missing key and while this
   * process's own write of it is not yet acknowledged.
   */
  offsetOf(key: string): number | undefined;
  /**
   * Optional (Kafka): resolves once this copy has read everything any process wrote to the
   * table before the call. An embedded table has no other writers and is always in sync.
   */
  sync?(): Promise<void>;
}

export interface Backbone {
  readonly kind: 'embedded' | 'kafka' | 'memory';
  start(): Promise<void>;
  /** Flushes everything accepted so far and releases files and connections. */
  stop(): Promise<void>;
  /** Creates topics that do not exist yet; existing ones are left as they are. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /**
   * Appends records to a topic. Resolves when they are durable according to the
   * backbone's policy (see docs/backbone.md), with one position per record, in order.
   * Records with the same key keep their order.
   */
  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordPosition[]>;
  /**
   * Optional: the offset the next record appended to `topic` (partition 0) will get, when the
   * backbone assigns offsets synchronously inside append() (embedded). An in-process router uses
   * it to route a message in the same tick instead of after the durable write. Undefined when
   * not known (topic not open yet, or a backbone that learns offsets from the broker).
   */
  nextOffset?(topic: string): number | undefined;
  /**
   * Optional, with nextOffset: append() for a caller that needs no positions (it took the offset
   * from nextOffset). Every call written in the same batch gets the same promise, so a flood of
   * small appends costs one promise per write instead of one per call. A call that cannot be
   * encoded rejects its batch's promise; a failed write rejects it as it rejects append().
   */
  appendShared?(topic: string, records: readonly ProducerRecord[]): Promise<void>;
  /**
   * Optional: milliseconds since the remote cluster last answered this process (Kafka); absent
   * where the backbone is in-process and always reachable. Used to tell "a peer went silent"
   * from "the backbone itself is unreachable" (the router's lease checks).
   */
  sinceContact?(): number;
  consume(options: ConsumeOptions): Promise<Consumer>;
  /** Opens (creating if needed) a compacted table. Opening the same name twice returns the same table. */
  table(name: string): Promise<Table>;
}
