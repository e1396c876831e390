import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BackboneError, silentLogger, ValidationError, type Logger } from '@tributary/common';
import type {
  Backbone,
  Consumer,
  ConsumeOptions,
  ProducerRecord,
  RecordPosition,
  Table,
  TopicSpec,
} from '../backbone';
import { GroupLocks } from '../group-consumer';
import { EmbeddedConsumer, type OffsetStore } from './consumer';
import { lockDir } from './dir-lock';
import type { TopicConfig } from './files';
import { EmbeddedTable } from './table';
import { TopicLog, type FsyncPolicy } from './topic-log';

export type { FsyncPolicy } from './topic-log';

export interface EmbeddedBackboneOptions {
  /** Data lives in `<dataDir>/backbone/<topicPrefix><topic>/`. */
  dataDir: string;
  /** When to fsync (docs/backbone.md). Default 'interval'. */
  fsync?: FsyncPolicy;
  /** With fsync 'interval': milliseconds between fsyncs. Default 1000. */
  fsyncIntervalMs?: number;
  /** Size at which a segment file is rolled. Default 64 MiB. */
  segmentBytes?: number;
  /** Prefix of every topic directory. Default ''. */
  topicPrefix?: string;
  logger?: Logger;
}

/** Committed consumer offsets live in this compacted table. */
export const CONSUMER_OFFSETS_TABLE = '__consumer_offsets';
const RETENTION_CHECK_MS = 60_000;
/** Kafka's rule for topic names, which are also our directory names. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

type State = 'new' | 'starting' | 'started' | 'stopping' | 'stopped';

/**
 * The in-process backbone: each topic is one partition stored as append-only segment files,
 * with group commit on the append path. See docs/backbone.md.
 */
export class EmbeddedBackbone implements Backbone {
  readonly kind = 'embedded' as const;
  private state: State = 'new';
  private readonly root: string;
  private readonly fsync: FsyncPolicy;
  private readonly fsyncIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly logs = new Map<string, TopicLog>();
  private readonly tables = new Map<string, Promise<EmbeddedTable>>();
  private readonly consumers = new Set<EmbeddedConsumer>();
  private readonly locks = new GroupLocks();
  private offsets: Promise<OffsetStore> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private unlock: (() => Promise<void>) | null = null;
  private stopping: Promise<void> | null = null;

  constructor(options: EmbeddedBackboneOptions) {
    if (typeof options.dataDir !== 'string' || options.dataDir === '') throw new ValidationError('INVALID_ARGUMENT', 'EmbeddedBackbone: dataDir is required');
    this.fsync = options.fsync ?? 'interval';
    if (!['always', 'interval', 'never'].includes(this.fsync)) throw new ValidationError('INVALID_ARGUMENT', `EmbeddedBackbone: bad fsync policy ${String(this.fsync)}`);
    this.fsyncIntervalMs = positiveInt('fsyncIntervalMs', options.fsyncIntervalMs ?? 1000);
    this.segmentBytes = positiveInt('segmentBytes', options.segmentBytes ?? 64 * 1024 * 1024);
    this.prefix = options.topicPrefix ?? '';
    this.root = join(options.dataDir, 'backbone');
    this.logger = options.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new BackboneError('BACKBONE_NOT_RUNNING', `EmbeddedBackbone.start(): the backbone is ${this.state}; create a new instance`);
    this.state = 'starting';
    try {
      await mkdir(this.root, { recursive: true });
      // Beside the backbone directory, so it cannot collide with a topic directory.
      this.unlock = await lockDir(join(dirname(this.root), 'backbone.lock'));
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    if (this.state !== 'starting') {
      // stop() was called while starting.
      await this.unlock();
      throw new BackboneError('BACKBONE_NOT_RUNNING', 'EmbeddedBackbone: stopped while starting');
    }
    this.state = 'started';
    if (this.fsync === 'interval') {
      this.timers.push(setInterval(() => this.logs.forEach((l) => l.requestSync()), this.fsyncIntervalMs));
    }
    this.timers.push(setInterval(() => this.logs.forEach((l) => l.applyRetention()), RETENTION_CHECK_MS));
    for (const t of this.timers) t.unref();
    this.logger.info({ dir: this.root, fsync: this.fsync }, 'backbone: embedded backbone started');
  }

  /** Stops consumers, writes and fsyncs everything accepted, closes files. Idempotent. */
  stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state === 'stopped' && this.stopping === null) return Promise.resolve();
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Consumers first: their handlers may still append, and their last commits must be written.
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await Promise.allSettled([...this.tables.values()]);
    const results = await Promise.allSettled([...this.logs.values()].map((l) => l.close()));
    this.logs.clear();
    this.tables.clear();
    this.state = 'stopped';
    await this.unlock?.();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.assertStarted('ensureTopics');
    const logs = specs.map((spec) => this.topicLog(spec.name, topicConfig(spec)));
    await Promise.all(logs.map((l) => l.ready));
  }

  nextOffset(topic: string): number | undefined {
    return this.state === 'started' ? this.logs.get(topic)?.assignableOffset : undefined;
  }

  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    // While stopping, consumer handlers may still append to open topics.
    if (this.state !== 'started' && this.state !== 'stopping') return Promise.reject(this.notStarted('append'));
    try {
      return this.topicLog(topic).append(records);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  appendShared(topic: string, records: readonly ProducerRecord[]): Promise<void> {
    if (this.state !== 'started' && this.state !== 'stopping') return Promise.reject(this.notStarted('append'));
    try {
      return this.topicLog(topic).appendShared(records);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    this.assertStarted('consume');
    if (typeof options.eachBatch !== 'function') throw new ValidationError('INVALID_ARGUMENT', 'consume(): eachBatch must be a function');
    const log = this.topicLog(options.topic);
    await log.ready;
    const offsets = options.group === undefined ? null : await this.offsetStore();
    this.assertStarted('consume');
    const consumer = new EmbeddedConsumer(log, options, {
      offsets,
      locks: this.locks,
      logger: this.logger,
      onStopped: (c) => this.consumers.delete(c),
    });
    this.consumers.add(consumer);
    consumer.begin();
    return consumer;
  }

  async table(name: string): Promise<Table> {
    this.assertStarted('table');
    return this.openTable(name);
  }

  private openTable(name: string): Promise<EmbeddedTable> {
    let table = this.tables.get(name);
    if (table === undefined) {
      const opening = EmbeddedTable.open(name, this.topicLog(name, { cleanup: 'compact' }), this.logger);
      opening.catch(() => {
        if (this.tables.get(name) === opening) this.tables.delete(name);
      });
      this.tables.set(name, opening);
      table = opening;
    }
    return table;
  }

  private offsetStore(): Promise<OffsetStore> {
    this.offsets ??= this.openTable(CONSUMER_OFFSETS_TABLE).then((t) => new TableOffsetStore(t));
    this.offsets.catch(() => (this.offsets = null));
    return this.offsets;
  }

  /** The topic's log, created (and opened in the background) on first use. */
  private topicLog(topic: string, config: TopicConfig = { cleanup: 'delete' }): TopicLog {
    const existing = this.logs.get(topic);
    if (existing !== undefined) return existing;
    if (this.state !== 'started') throw this.notStarted(`topic ${topic}`);
    const dirName = this.prefix + topic;
    if (!TOPIC_NAME.test(dirName) || dirName === '.' || dirName === '..') {
      throw new ValidationError('TOPIC_NAME_INVALID', `invalid backbone topic name ${JSON.stringify(dirName)} (allowed: A-Z a-z 0-9 . _ -, at most 249)`);
    }
    const log = new TopicLog({
      dir: join(this.root, dirName),
      topic,
      config,
      fsync: this.fsync,
      segmentBytes: this.segmentBytes,
      logger: this.logger,
    });
    this.logs.set(topic, log);
    log.ready.catch((err: unknown) => {
      this.logger.error({ err, topic }, 'backbone: cannot open topic');
      if (this.logs.get(topic) === log) this.logs.delete(topic);
    });
    return log;
  }

  private assertStarted(what: string): void {
    if (this.state !== 'started') throw this.notStarted(what);
  }

  private notStarted(what: string): Error {
    const why = this.state === 'new' || this.state === 'starting' ? 'call start() first' : 'it is stopped';
    return new BackboneError('BACKBONE_NOT_RUNNING', `EmbeddedBackbone: cannot use ${what}: ${why}`);
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new ValidationError('INVALID_ARGUMENT', `EmbeddedBackbone: ${name} must be a positive integer, got ${v}`);
  return v;
}

function topicConfig(spec: TopicSpec): TopicConfig {
  if (spec.cleanup !== 'delete' && spec.cleanup !== 'compact') throw new ValidationError('INVALID_ARGUMENT', `topic ${spec.name}: bad cleanup ${String(spec.cleanup)}`);
  const config: TopicConfig = { cleanup: spec.cleanup };
  if (spec.retentionMs !== undefined) config.retentionMs = spec.retentionMs;
  if (spec.retentionBytes !== undefined) config.retentionBytes = spec.retentionBytes;
  return config;
}

/** Offsets as 8-byte values keyed by [group, topic, partition] in the offsets table. */
class TableOffsetStore implements OffsetStore {
  constructor(private readonly table: EmbeddedTable) {}

  get(group: string, topic: string): number | undefined {
    const v = this.table.get(JSON.stringify([group, topic, 0]));
    return v?.length === 8 ? Number(v.readBigInt64LE(0)) : undefined;
  }

  commit(group: string, topic: string, next: number): Promise<void> {
    const v = Buffer.allocUnsafe(8);
    v.writeBigInt64LE(BigInt(next));
    return this.table.set(JSON.stringify([group, topic, 0]), v);
  }
}
