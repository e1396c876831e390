import { kafkajsPatched, requestQueuePatched } from './kafkajs-patches';
import { randomBytes } from 'node:crypto';
import { BackboneError, silentLogger, ValidationError, type Logger } from '@tributary/common';
import {
  CompressionTypes,
  Kafka,
  logLevel,
  type Admin,
  type IResourceConfigEntry,
  type KafkaConfig,
  type logCreator,
  type Producer,
} from 'kafkajs';
import type { Backbone, Consumer, ConsumeOptions, ProducerRecord, RecordPosition, Table, TopicSpec } from '../backbone';
import { KafkaConsumer, watermarksOf, type ConsumerSettings } from './consumer';
import { AppendBatcher, PartitionPins, pinningPartitioner, type BatcherSettings } from './producer';
import { KafkaTable } from './table';

export interface KafkaBackboneOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Default 'tributary'. */
  clientId?: string;
  /** Prefix of every topic and consumer group id. Default ''. */
  topicPrefix?: string;
  /** Partitions of topics this backbone creates (unless the TopicSpec says). Default 1. */
  partitions?: number;
  /** Replicas of topics this backbone creates. Default 1 (use 3 on a real cluster). */
  replicationFactor?: number;
  /** `min.insync.replicas` of topics this backbone creates; default: the broker's (use 2 with 3 replicas). */
  minInsyncReplicas?: number;
  /** 0 (default): a produce request per event-loop turn; >0: wait this long to batch more. */
  lingerMs?: number;
  /** Close a produce request at this size. Default 1 MiB (the broker's default record-batch limit). */
  maxBatchBytes?: number;
  /** `max.message.bytes` of topics this backbone creates. Default 8 MiB. */
  maxMessageBytes?: number;
  /** acks=all timeout on the broker. Default 30 000 ms. */
  ackTimeoutMs?: number;
  /**
   * Default 30 000 ms: an append Kafka has not acknowledged this long fails (BACKBONE_STALLED),
   * and so does every append until Kafka answers again (docs/kafka.md, "Faults").
   */
  stallTimeoutMs?: number;
  /** Default 'none' (kafkajs has gzip built in; others need codecs). */
  compression?: 'none' | 'gzip';
  /** Consumers' fetch max wait. Default 100 ms. */
  fetchWaitMs?: number;
  /** Default 1000 ms: how fast a group member notices a rebalance. */
  heartbeatIntervalMs?: number;
  /** Default 30 000 ms: a member silent this long (handler stuck) loses its partitions. */
  sessionTimeoutMs?: number;
  /** TLS and SASL for clusters that need them (passed to kafkajs). */
  ssl?: KafkaConfig['ssl'];
  sasl?: KafkaConfig['sasl'];
  logger?: Logger;
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
/**
 * kafkajs's retries: its default backoff doubles up to 30 s, so after a pause or a broker
 * restart a client could sleep for many seconds after Kafka was back. Capped at 1 s here: a
 * recovered cluster is used again within about a second. Admin and consumers give up after these
 * retries (about 8 s of refused connections; a request that times out waits 30 s per try), and
 * consumers restart. The producer retries for at least the stall timeout (producerRetries).
 */
const RETRY = { initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2, multiplier: 2, retries: 10 };
/**
 * The producer's retries cover the stall timeout even when every try fails at once (refused
 * connections, no leader yet), so an append fails only by the stall rule, never because a slow
 * leader election outlasted 10 tries (a busy CI box once took longer than their ~8 s after a
 * broker's kill -9, and every publisher was disconnected). Bounded, not unlimited: unlimited
 * retries were tried and a gateway once stayed stalled for over a minute after a broker restart
 * under load. A request sent again keeps its sequence numbers, so retries never duplicate.
 */
const producerRetries = (stallTimeoutMs: number): number => Math.ceil(stallTimeoutMs / RETRY.maxRetryTime) + 5;
/** Table topics roll segments at 64 MiB so compaction can run (it never touches the active one). */
const COMPACT_SEGMENT_BYTES = 64 * 1024 * 1024;

type State = 'new' | 'started' | 'stopping' | 'stopped';

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new ValidationError('INVALID_ARGUMENT', `KafkaBackbone: ${name} must be an integer >= ${min}`);
  return value;
}

/**
 * kafkajs logs through pino, one level down: its errors are mostly retried (warn), its warnings
 * are routine (rebalances: info), its info is chatty (debug). Its Connection layer logs every
 * error response (topic exists, rebalance in progress) before the caller handles it: debug.
 */
function logCreatorFor(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _ts, ...extra } = log;
      const obj = { ...extra, kafkajs: namespace };
      const text = `kafkajs: ${message}`;
      if (level === logLevel.ERROR && namespace !== 'Connection') logger.warn(obj, text);
      else if (level === logLevel.WARN) logger.info(obj, text);
      else if (level === logLevel.DEBUG) logger.trace(obj, text);
      else logger.debug(obj, text);
    };
}

/**
 * The backbone on Apache Kafka (kafkajs). Topics and group ids carry `topicPrefix`; topics are
 * created on first use with the partitions/replication from the options. See docs/backbone.md.
 */
export class KafkaBackbone implements Backbone {
  readonly kind = 'kafka' as const;
  private state: State = 'new';
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private readonly producer: Producer;
  private readonly batcher: AppendBatcher;
  private readonly prefix: string;
  private readonly clientId: string;
  private readonly partitions: number;
  private readonly replicationFactor: number;
  private readonly maxMessageBytes: number;
  private readonly ackTimeoutMs: number;
  private readonly consumerSettings: ConsumerSettings;
  private readonly logger: Logger;
  /** Topics known to exist (or being created), by Kafka name. */
  private readonly topics = new Map<string, Promise<void>>();
  private readonly ready = new Set<string>();
  private readonly tables = new Map<string, Promise<KafkaTable>>();
  private readonly consumers = new Set<KafkaConsumer>();
  private stopping: Promise<void> | null = null;
  private readonly minInsyncReplicas: number | undefined;
  /** When a Kafka broker last answered any request of this process (ms). */
  private lastContact = Date.now();
  private readonly contact = (): void => {
    this.lastContact = Date.now();
  };

  constructor(options: KafkaBackboneOptions) {
    if (!Array.isArray(options.brokers) || options.brokers.length === 0) throw new ValidationError('INVALID_ARGUMENT', 'KafkaBackbone: brokers is required');
    this.prefix = options.topicPrefix ?? '';
    this.clientId = options.clientId ?? 'tributary';
    this.partitions = positiveInt('partitions', options.partitions ?? 1);
    this.replicationFactor = positiveInt('replicationFactor', options.replicationFactor ?? 1);
    this.maxMessageBytes = positiveInt('maxMessageBytes', options.maxMessageBytes ?? 8 * 1024 * 1024);
    this.minInsyncReplicas = options.minInsyncReplicas === undefined || options.minInsyncReplicas === 0 ? undefined : positiveInt('minInsyncReplicas', options.minInsyncReplicas);
    this.logger = options.logger ?? silentLogger;
    this.consumerSettings = {
      fetchWaitMs: positiveInt('fetchWaitMs', options.fetchWaitMs ?? 100, 0),
      heartbeatIntervalMs: positiveInt('heartbeatIntervalMs', options.heartbeatIntervalMs ?? 1000),
      sessionTimeoutMs: positiveInt('sessionTimeoutMs', options.sessionTimeoutMs ?? 30_000),
      maxBytesPerPartition: 1024 * 1024,
    };
    this.ackTimeoutMs = positiveInt('ackTimeoutMs', options.ackTimeoutMs ?? 30_000);
    const batcherSettings: BatcherSettings = {
      lingerMs: positiveInt('lingerMs', options.lingerMs ?? 0, 0),
      maxBatchBytes: positiveInt('maxBatchBytes', options.maxBatchBytes ?? 1024 * 1024),
      ackTimeoutMs: this.ackTimeoutMs,
      compression: options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      stallTimeoutMs: positiveInt('stallTimeoutMs', options.stallTimeoutMs ?? 30_000),
      // Logged once per episode, not once per failed append.
      onStall: (event, ms) => {
        if (event === 'stalled') this.logger.error({ waitedMs: ms }, 'backbone: Kafka acknowledged no append within backbone.kafka.stall_timeout; appends fail until it answers again');
        else this.logger.warn({ stalledMs: ms }, 'backbone: Kafka answers again; appends succeed');
      },
    };
    const client = (retry: typeof RETRY): Kafka =>
      new Kafka({
        clientId: this.clientId,
        brokers: options.brokers,
        logLevel: logLevel.INFO,
        logCreator: logCreatorFor(this.logger),
        retry,
        ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
        ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
      });
    this.kafka = client(RETRY);
    this.admin = this.kafka.admin();
    this.admin.on(this.admin.events.REQUEST, this.contact);
    const partitionOf = new PartitionPins();
    // Idempotent (acks=all, one request in flight, sequence numbers): retries never duplicate
    // or reorder records. A client of its own, because kafkajs's reconnect to the cluster (inside
    // each send's retries) takes the client's retry settings, not the producer's.
    this.producer = client({ ...RETRY, retries: producerRetries(batcherSettings.stallTimeoutMs) }).producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: pinningPartitioner(partitionOf),
    });
    this.producer.on(this.producer.events.REQUEST, this.contact);
    this.batcher = new AppendBatcher(this.producer, partitionOf, batcherSettings);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new BackboneError('BACKBONE_NOT_RUNNING', `KafkaBackbone.start(): the backbone is ${this.state}; create a new instance`);
    this.state = 'started';
    try {
      await this.admin.connect();
      await this.producer.connect();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.logger.info({ clientId: this.clientId, prefix: this.prefix }, 'backbone: kafka backbone started');
    if (!kafkajsPatched) this.logger.warn('backbone: kafkajs loaded before its produce-batching fix (libs/backbone/src/kafka/kafkajs-patches.ts) could apply; large batches are slower');
    if (!requestQueuePatched) this.logger.warn('backbone: kafkajs has no RequestQueue.scheduleCheckPendingRequests where 2.2.4 has it, so its fix (libs/backbone/src/kafka/kafkajs-patches.ts) did not apply; each broker connection may run a 1 ms timer');
  }

  /**
   * Milliseconds since a Kafka broker last answered this process (consumers fetch at least every
   * `fetchWaitMs`, so a healthy cluster keeps this near 0). The router does not declare gateway
   * leases lapsed while it cannot hear Kafka itself.
   */
  sinceContact(): number {
    return Date.now() - this.lastContact;
  }

  /** Stops consumers (and table followers), sends what was appended, disconnects. Idempotent. */
  stop(): Promise<void> {
    if (this.state === 'new') this.state = 'stopped';
    if (this.state === 'stopped' && this.stopping === null) return Promise.resolve();
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    // Consumers first: their handlers may still append.
    await Promise.allSettled([...this.consumers].map((c) => c.stop()));
    await Promise.allSettled([...this.tables.values()]);
    // Bounded: kafkajs may keep retrying these sends for as long as the cluster misbehaves.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.ackTimeoutMs)));
    if (await Promise.race([this.batcher.flushed().then(() => false), timedOut])) {
      this.logger.warn('backbone: stopping with appends not yet acknowledged by kafka; they fail');
      this.batcher.abort(new BackboneError('BACKBONE_NOT_RUNNING', 'KafkaBackbone: stopped before kafka acknowledged the append'));
    }
    clearTimeout(timer);
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    this.state = 'stopped';
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    this.check();
    await Promise.all(specs.map((s) => this.ensureTopic(this.topicName(s.name), s)));
  }

  append(topic: string, records: readonly ProducerRecord[]): Promise<RecordPosition[]> {
    try {
      this.check();
      if (records.length === 0) return Promise.resolve([]);
      const name = this.topicName(topic);
      // Known topics stay synchronous, so calls in one turn share one request in call order.
      if (this.ready.has(name)) return this.batcher.add(name, records);
      return this.ensureTopic(name).then(() => this.batcher.add(name, records));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    this.check();
    const topic = this.topicName(options.topic);
    await this.ensureTopic(topic);
    const consumer = await KafkaConsumer.start(
      {
        kafka: this.kafka,
        admin: this.admin,
        logger: this.logger,
        settings: this.consumerSettings,
        topic,
        logicalTopic: options.topic,
        groupId: options.group === undefined ? null : `${this.prefix}${options.group}`,
        ephemeralGroupId: `${this.prefix}ephemeral.${this.clientId}.${randomBytes(8).toString('hex')}`,
        onContact: this.contact,
        onStopped: (c) => this.consumers.delete(c),
      },
      options,
    );
    this.consumers.add(consumer);
    if (this.state !== 'started') await consumer.stop();
    return consumer;
  }

  table(name: string): Promise<Table> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    let table = this.tables.get(name);
    if (table === undefined) {
      table = this.openTable(name);
      this.tables.set(name, table);
      table.catch(() => this.tables.delete(name));
    }
    return table;
  }

  private async openTable(name: string): Promise<KafkaTable> {
    await this.ensureTopic(this.topicName(name), { name, cleanup: 'compact' });
    return KafkaTable.open(name, {
      append: (records) => this.append(name, records),
      follow: (onRecords) => this.consume({ topic: name, from: 'earliest', maxBatch: 10_000, eachBatch: onRecords }),
      highWatermarks: async () => new Map((await watermarksOf(this.admin, this.topicName(name))).map((w) => [w.partition, Number(w.high)])),
    });
  }

  private check(): void {
    if (this.state === 'new') throw new BackboneError('BACKBONE_NOT_RUNNING', 'KafkaBackbone: call start() first');
    if (this.state !== 'started') throw new BackboneError('BACKBONE_NOT_RUNNING', 'KafkaBackbone: the backbone is stopped');
  }

  private topicName(topic: string): string {
    const name = `${this.prefix}${topic}`;
    if (!TOPIC_NAME.test(name)) throw new ValidationError('TOPIC_NAME_INVALID', `KafkaBackbone: invalid backbone topic name ${JSON.stringify(name)}`);
    return name;
  }

  /** Creates the topic unless it exists (existing topics are never altered). */
  private ensureTopic(name: string, spec?: TopicSpec): Promise<void> {
    let created = this.topics.get(name);
    if (created === undefined) {
      created = this.createTopic(name, spec ?? { name, cleanup: 'delete' }).then(
        () => void this.ready.add(name),
        (err: unknown) => {
          this.topics.delete(name);
          throw err;
        },
      );
      this.topics.set(name, created);
    }
    return created;
  }

  private async createTopic(name: string, spec: TopicSpec): Promise<void> {
    const configEntries: IResourceConfigEntry[] = [
      { name: 'cleanup.policy', value: spec.cleanup },
      { name: 'max.message.bytes', value: String(this.maxMessageBytes) },
    ];
    if (this.minInsyncReplicas !== undefined) configEntries.push({ name: 'min.insync.replicas', value: String(this.minInsyncReplicas) });
    if (spec.cleanup === 'compact') configEntries.push({ name: 'segment.bytes', value: String(COMPACT_SEGMENT_BYTES) });
    if (spec.retentionMs !== undefined) configEntries.push({ name: 'retention.ms', value: String(spec.retentionMs) });
    if (spec.retentionBytes !== undefined) configEntries.push({ name: 'retention.bytes', value: String(spec.retentionBytes) });
    const created = await this.admin.createTopics({
      // kafkajs's wait gives up on UNKNOWN_TOPIC_OR_PARTITION, which KRaft answers for a moment
      // after creating a topic: waitForLeaders() below retries that.
      waitForLeaders: false,
      topics: [
        {
          topic: name,
          numPartitions: positiveInt('partitions', spec.partitions ?? this.partitions),
          replicationFactor: this.replicationFactor,
          configEntries,
        },
      ],
    });
    if (created) this.logger.info({ topic: name, cleanup: spec.cleanup }, 'backbone: created kafka topic');
    await this.waitForLeaders(name);
  }

  /**
   * Until every partition of the topic has a leader that serves it (up to the ack timeout): on a
   * cluster the metadata can name a leader a moment before that broker hosts the partition
   * ("This server does not host this topic-partition"), so its offsets are asked for too.
   */
  private async waitForLeaders(name: string): Promise<void> {
    const deadline = Date.now() + this.ackTimeoutMs;
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      try {
        const { topics } = await this.admin.fetchTopicMetadata({ topics: [name] });
        const partitions = topics[0]?.partitions ?? [];
        if (partitions.length > 0 && partitions.every((p) => p.leader >= 0)) {
          await this.admin.fetchTopicOffsets(name);
          return;
        }
        if (Date.now() > deadline) throw new BackboneError('BACKBONE_UNAVAILABLE', `KafkaBackbone: topic ${name} has partitions without a leader`);
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
