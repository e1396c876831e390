import { BackboneError, type Logger } from '@tributary/common';
import type { Admin, EachBatchPayload, Kafka, Consumer as KafkaJsConsumer, KafkaMessage } from 'kafkajs';
import type { ConsumedRecord, Consumer, ConsumeOptions, RecordHeaders } from '../backbone';
import { callHandler, insideHandlerOf } from '../batch-delivery';

export interface ConsumerSettings {
  /** Longest time the broker holds an empty fetch (it answers at once when records arrive). */
  fetchWaitMs: number;
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
  maxBytesPerPartition: number;
}

export interface ConsumerDeps {
  kafka: Kafka;
  admin: Admin;
  logger: Logger;
  settings: ConsumerSettings;
  /** The Kafka topic (prefixed). */
  topic: string;
  /** The name reported in ConsumedRecord.topic (without the prefix, as the caller named it). */
  logicalTopic: string;
  /** Kafka group id (prefixed), or null: an ephemeral group that never commits. */
  groupId: string | null;
  ephemeralGroupId: string;
  /** Called on every answer from Kafka (liveness, KafkaBackbone.sinceContact). */
  onContact: () => void;
  onStopped: (c: KafkaConsumer) => void;
}

const DEFAULT_MAX_BATCH = 500;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/**
 * The topic's low/high watermarks. kafkajs fails (with a TypeError from inside) while a
 * partition has no leader in its metadata, e.g. just after the topic was created or while the
 * broker is busy electing one: retried with backoff for up to ~30 s.
 */
export async function watermarksOf(admin: Admin, topic: string): Promise<{ partition: number; high: string; low: string }[]> {
  let delay = RETRY_MIN_MS;
  for (let waited = 0; ; waited += delay, delay = Math.min(delay * 2, RETRY_MAX_MS)) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (err) {
      if (waited >= 30_000) throw new BackboneError('BACKBONE_UNAVAILABLE', `offsets of Kafka topic ${topic} unavailable: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Group errors kafkajs's runner answers by rejoining (its isRebalancing, and an expired member). */
const REJOIN = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID']);

/**
 * kafkajs's commit retrier wraps a non-retriable group error (UNKNOWN_MEMBER_ID when the
 * member's session expired, e.g. while Kafka was paused) in KafkaJSNonRetriableError, which its
 * runner treats as a crash it does not restart from: the consumer would stop for good. The
 * protocol error inside is rethrown instead, so the runner rejoins the group.
 */
function groupError(err: unknown): unknown {
  for (let e = err as { type?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && REJOIN.has(e.type)) return e;
  }
  return err;
}

function headersOf(message: KafkaMessage): RecordHeaders {
  const out: RecordHeaders = {};
  if (message.headers === undefined) return out;
  for (const [k, v] of Object.entries(message.headers)) {
    // Kafka allows repeated header keys; the backbone's headers are a map, so the last one wins.
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last !== undefined) out[k] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}

/**
 * A kafkajs consumer behind the Backbone `Consumer` interface.
 *
 * kafkajs has no manual partition assignment, so a consumer without a group joins an ephemeral
 * group of its own (unique id, never committed) and seeks every partition it is given to its own
 * positions, fixed when consume() is called. With a group, kafkajs resumes after the committed
 * offsets; partitions without one start at `from`: earliest through kafkajs's reset; latest and
 * explicit offsets by a seek (and a commit) at the first join, to the positions computed at
 * consume().
 */
export class KafkaConsumer implements Consumer {
  readonly caughtUp: Promise<void>;
  private resolveCaughtUp!: () => void;
  private rejectCaughtUp!: (err: Error) => void;
  private isCaughtUp = false;
  /** High watermarks when the consumer started: what caughtUp waits for. */
  private readonly targets = new Map<number, number>();
  /** The next offset to deliver, per partition, as far as this member knows. */
  private readonly positions = new Map<number, number>();
  /** Group consumers: start positions to seek to at the first join (no committed offset). */
  private readonly seekAtJoin = new Map<number, number>();
  private assigned: number[] | null = null;
  private joined = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** The batch being handled (and committed): stop() lets it finish before kafkajs leaves. */
  private inBatch: Promise<unknown> = Promise.resolve();
  private readonly consumer: KafkaJsConsumer;
  private readonly maxBatch: number;

  private constructor(
    private readonly deps: ConsumerDeps,
    private readonly options: ConsumeOptions,
  ) {
    this.caughtUp = new Promise<void>((resolve, reject) => {
      this.resolveCaughtUp = resolve;
      this.rejectCaughtUp = reject;
    });
    this.caughtUp.catch(() => undefined);
    this.maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
    const s = deps.settings;
    this.consumer = deps.kafka.consumer({
      groupId: deps.groupId ?? deps.ephemeralGroupId,
      maxWaitTimeInMs: s.fetchWaitMs,
      minBytes: 1,
      heartbeatInterval: s.heartbeatIntervalMs,
      sessionTimeout: s.sessionTimeoutMs,
      maxBytesPerPartition: s.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.REQUEST, deps.onContact);
  }

  static async start(deps: ConsumerDeps, options: ConsumeOptions): Promise<KafkaConsumer> {
    const c = new KafkaConsumer(deps, options);
    try {
      await c.begin();
    } catch (err) {
      await c.consumer.disconnect().catch(() => undefined);
      throw err;
    }
    return c;
  }

  private async begin(): Promise<void> {
    const { admin, topic, groupId } = this.deps;
    const from = this.options.from ?? 'latest';
    const watermarks = await watermarksOf(admin, topic);
    const committed = groupId === null ? new Map<number, number>() : await this.committedOffsets();
    const explicit = new Map(Array.isArray(from) ? from.map((e) => [e.partition, e.offset] as const) : []);
    for (const w of watermarks) {
      const high = Number(w.high);
      const low = Number(w.low);
      this.targets.set(w.partition, high);
      const done = committed.get(w.partition);
      if (done !== undefined) {
        this.positions.set(w.partition, done);
        continue;
      }
      // Partitions missing from an explicit list start at the earliest record.
      const start = from === 'latest' ? high : from === 'earliest' ? low : (explicit.get(w.partition) ?? low);
      this.positions.set(w.partition, start);
      if (groupId !== null && from !== 'earliest') this.seekAtJoin.set(w.partition, start);
    }
    if (groupId === null) {
      // The ephemeral group's only member owns every partition.
      this.assigned = [...this.targets.keys()];
      this.checkCaughtUp();
    }
    const events = this.consumer.events;
    this.consumer.on(events.GROUP_JOIN, (e) => this.onJoin(e.payload.memberAssignment[topic] ?? []));
    this.consumer.on(events.CRASH, (e) =>
      this.deps.logger.error({ err: e.payload.error, topic, restart: e.payload.restart }, 'backbone: kafka consumer crashed'),
    );
    await this.consumer.connect();
    // Where kafkajs starts a partition we did not seek (uncommitted, or offset out of range
    // after retention): the oldest remaining record, as the embedded backbone does.
    await this.consumer.subscribe({ topics: [topic], fromBeginning: true });
    // Resolves after the first join; our seeks (made in onJoin) apply to the first fetch.
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => {
        // Set before the handler runs: it may call stop() synchronously.
        let done!: () => void;
        this.inBatch = new Promise<void>((resolve) => (done = resolve));
        return this.onBatch(payload).finally(done);
      },
    });
  }

  private async committedOffsets(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const { admin, topic, groupId } = this.deps;
    if (groupId === null) return out;
    for (const t of await admin.fetchOffsets({ groupId, topics: [topic] })) {
      for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(p.partition, Number(p.offset));
    }
    return out;
  }

  /** Runs inside kafkajs's join, before the next fetch: seeks made here apply to that fetch. */
  private onJoin(partitions: number[]): void {
    const { topic, groupId } = this.deps;
    this.assigned = partitions;
    for (const partition of partitions) {
      // Without a group nothing is committed: after any rejoin (rebalance, restart after a
      // crash) continue from what was delivered, not from kafkajs's reset position.
      const offset = groupId === null ? this.positions.get(partition) : this.joined ? undefined : this.seekAtJoin.get(partition);
      if (offset !== undefined) this.consumer.seek({ topic, partition, offset: String(offset) });
    }
    if (groupId !== null && !this.joined) this.commitStart(partitions);
    this.joined = true;
    this.seekAtJoin.clear();
    if (groupId !== null && !this.isCaughtUp) {
      // Partitions taken over from another member start at that member's commits.
      this.committedOffsets().then(
        (committed) => {
          for (const [p, o] of committed) this.advance(p, o);
          this.checkCaughtUp();
        },
        (err: unknown) => this.deps.logger.debug({ err, topic }, 'backbone: could not read committed offsets'),
      );
    }
    this.checkCaughtUp();
  }

  /**
   * Commits the start positions sought at the first join, so the group's start is fixed now:
   * a member that takes a partition over before anything was consumed starts there too.
   */
  private commitStart(partitions: number[]): void {
    const { topic } = this.deps;
    const start = partitions.flatMap((partition) => {
      const offset = this.seekAtJoin.get(partition);
      return offset === undefined ? [] : [{ topic, partition, offset: String(offset) }];
    });
    if (start.length === 0) return;
    this.consumer
      .commitOffsets(start)
      .catch((err: unknown) => this.deps.logger.warn({ err, topic }, 'backbone: could not commit the start offsets'));
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const partition = batch.partition;
    const records = batch.messages.map(
      (m): ConsumedRecord => ({
        topic: this.deps.logicalTopic,
        partition,
        offset: Number(m.offset),
        key: m.key === null || m.key === undefined ? null : m.key.toString('utf8'),
        value: m.value,
        headers: headersOf(m),
        timestamp: Number(m.timestamp),
      }),
    );
    for (let i = 0; i < records.length; i += this.maxBatch) {
      if (this.stopped || !isRunning() || isStale()) return;
      const chunk = records.slice(i, i + this.maxBatch);
      if (!(await this.deliver(chunk, heartbeat))) return;
      const next = chunk[chunk.length - 1]!.offset + 1;
      resolveOffset(String(next - 1));
      this.advance(partition, next);
      this.checkCaughtUp();
      // Committed even when the handler stopped the consumer: that batch was handled.
      if (this.deps.groupId !== null) await this.commit(partition, next);
      if (this.stopped) return;
      await heartbeat();
    }
  }

  /** Calls eachBatch until it succeeds (back-off 100 ms doubling to 5 s); false if stopped first. */
  private async deliver(chunk: ConsumedRecord[], heartbeat: () => Promise<void>): Promise<boolean> {
    let delay = RETRY_MIN_MS;
    for (;;) {
      try {
        await callHandler(this, () => this.options.eachBatch(chunk));
        return true;
      } catch (err) {
        if (this.stopped) return false;
        this.deps.logger.warn({ err, topic: this.deps.logicalTopic, retryInMs: delay }, 'backbone: eachBatch failed; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
        if (this.stopped) return false;
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        await heartbeat();
      }
    }
  }

  private async commit(partition: number, next: number): Promise<void> {
    try {
      await this.consumer.commitOffsets([{ topic: this.deps.topic, partition, offset: String(next) }]);
    } catch (err) {
      // A rebalance took the partition: kafkajs rejoins, and the new owner redelivers (at-least-once).
      if (this.stopped) this.deps.logger.debug({ err }, 'backbone: commit while stopping failed');
      else throw groupError(err);
    }
  }

  private advance(partition: number, next: number): void {
    if (next > (this.positions.get(partition) ?? -1)) this.positions.set(partition, next);
  }

  private checkCaughtUp(): void {
    if (this.isCaughtUp || this.assigned === null) return;
    for (const p of this.assigned) if ((this.positions.get(p) ?? 0) < (this.targets.get(p) ?? 0)) return;
    this.isCaughtUp = true;
    this.resolveCaughtUp();
  }

  stop(): Promise<void> {
    if (this.stopping === null) {
      this.stopped = true;
      this.wake?.();
      // After the batch in progress is handled and committed (kafkajs's disconnect does not
      // wait for that commit), leave the group.
      this.stopping = this.inBatch
        .then(() => this.consumer.disconnect())
        .catch((err: unknown) => this.deps.logger.warn({ err, topic: this.deps.logicalTopic }, 'backbone: consumer disconnect failed'))
        .then(() => {
          if (!this.isCaughtUp) this.rejectCaughtUp(new BackboneError('BACKBONE_NOT_RUNNING', 'backbone: the consumer was stopped before it caught up'));
          this.deps.onStopped(this);
        });
    }
    // Called from its own eachBatch: waiting would deadlock; nothing more is delivered anyway.
    return insideHandlerOf(this) ? Promise.resolve() : this.stopping;
  }
}
