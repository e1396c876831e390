import { BackboneError, silentLogger, type Logger, ValidationError } from '@tributary/common';
import type { Backbone, Consumer, ConsumeOptions, ProducerRecord, RecordPosition, Table, TopicSpec } from '../backbone';
import { GroupLocks } from '../group-consumer';
import { MemoryConsumer } from './consumer';
import { MemoryTable } from './table';
import { MemoryTopic, type MemoryTopicConfig } from './topic';

/**
 * What a memory backbone holds: its topics and the committed offsets and members of its
 * consumer groups. Backbones given the same storage behave like processes sharing one Kafka
 * cluster (a table sees the others' writes through onRemoteChange); a backbone started on the
 * storage of a stopped one finds everything it had (a restart without a disk).
 */
export class MemoryBackboneStorage {
  readonly topics = new Map<string, MemoryTopic>();
  readonly offsets = new Map<string, number>();
  readonly locks = new GroupLocks();
}

export interface MemoryBackboneOptions {
  /** Where the data lives; default: a new, empty storage of this backbone's own. */
  storage?: MemoryBackboneStorage;
  /** Prefix of every topic in the storage. Default ''. */
  topicPrefix?: string;
  logger?: Logger;
}

/** Kafka's rule for topic names: the memory backbone refuses what the others would. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

type State = 'new' | 'started' | 'stopping' | 'stopped';

/**
 * The backbone in process memory: no disk, nothing survives the process. For tests (unit tests
 * need no temp directory) and for brokers that want no durability. See docs/backbone.md.
 */
export class MemoryBackbone implements Backbone {
  readonly kind = 'memory' as const;
  readonly storage: MemoryBackboneStorage;
  private state: State = 'new';
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly tables = new Map<string, MemoryTable>();
  private readonly consumers = new Set<MemoryConsumer>();
  private stopping: Promise<void> | null = null;

  constructor(options: MemoryBackboneOptions = {}) {
    this.storage = options.storage ?? new MemoryBackboneStorage();
    this.prefix = options.topicPrefix ?? '';
    this.logger = options.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new BackboneError('BACKBONE_NOT_RUNNING', `MemoryBackbone.start(): the backbone is ${this.state}; create a new instance`);
    this.state = 'started';
  }

  /** Stops consumers and tables and makes every accepted record visible. Idempotent. */
  stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state === 'stopped' && this.stopping === null) return Promise.resolve();
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    // Consumers first: their handlers may still append, and their last commits must land.
    await Promise.all([...this.consumers].map((c) => c.stop()));
    for (const t of this.tables.values()) t.close();
    this.tables.clear();
    for (const topic of this.storage.topics.values()) topic.flush();
    this.state = 'stopped';
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.assertStarted('ensureTopics');
    for (const spec of specs) {
      if (spec.cleanup !== 'delete' && spec.cleanup !== 'compact') throw new ValidationError('INVALID_ARGUMENT', `topic ${spec.name}: bad cleanup ${String(spec.cleanup)}`);
      this.topic(spec.name, { cleanup: spec.cleanup, retentionMs: spec.retentionMs, retentionBytes: spec.retentionBytes });
    }
  }

  nextOffset(topic: string): number | undefined {
    return this.state === 'started' ? this.storage.topics.get(this.prefix + topic)?.nextOffset : undefined;
  }

  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    // While stopping, consumer handlers may still append.
    if (this.state !== 'started' && this.state !== 'stopping') return Promise.reject(this.notStarted('append'));
    try {
      return this.topic(topic).append(topic, records, null);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    this.assertStarted('consume');
    if (typeof options.eachBatch !== 'function') throw new ValidationError('INVALID_ARGUMENT', 'consume(): eachBatch must be a function');
    const consumer = new MemoryConsumer(this.topic(options.topic), options, {
      offsets: this.storage.offsets,
      locks: this.storage.locks,
      logger: this.logger,
      onStopped: (c) => this.consumers.delete(c),
    });
    this.consumers.add(consumer);
    consumer.begin();
    return consumer;
  }

  async table(name: string): Promise<Table> {
    this.assertStarted('table');
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new MemoryTable(name, this.topic(name, { cleanup: 'compact' }));
      this.tables.set(name, table);
    }
    return table;
  }

  /** The topic, created on first use; an existing topic keeps the config it was created with. */
  private topic(name: string, config: MemoryTopicConfig = { cleanup: 'delete' }): MemoryTopic {
    const full = this.prefix + name;
    let topic = this.storage.topics.get(full);
    if (topic === undefined) {
      if (!TOPIC_NAME.test(full) || full === '.' || full === '..') {
        throw new ValidationError('TOPIC_NAME_INVALID', `invalid backbone topic name ${JSON.stringify(full)} (allowed: A-Z a-z 0-9 . _ -, at most 249)`);
      }
      topic = new MemoryTopic(config);
      this.storage.topics.set(full, topic);
    }
    return topic;
  }

  private assertStarted(what: string): void {
    if (this.state !== 'started') throw this.notStarted(what);
  }

  private notStarted(what: string): Error {
    return new BackboneError('BACKBONE_NOT_RUNNING', `MemoryBackbone: cannot use ${what}: ${this.state === 'new' ? 'call start() first' : 'it is stopped'}`);
  }
}
