/**
 * The Kafka clients bench/kafka-clients.ts compares, behind one small interface: what each client has to offer
 * the backbone (one produce request, a group consumer with per-partition batches and manual commits, topic
 * creation with configs). Loaded from the repo's node_modules or from the directories given with --modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const CLIENTS = ['kafkajs', 'platformatic', 'confluent'] as const;
export type ClientName = (typeof CLIENTS)[number];
export const PACKAGES: Record<ClientName, string> = {
  kafkajs: 'kafkajs',
  platformatic: '@platformatic/kafka',
  confluent: '@confluentinc/kafka-javascript',
};

// ---------------------------------------------------------------------------------------------------------------
// What each client has to offer the backbone: one produce request, a group consumer with per-partition batches
// and manual commits, and topic creation with configs.

/** A record as the backbone produces it. */
export interface OutRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** A record as the backbone hands it on (ConsumedRecord's shape: string key, header map, number offsets). */
export interface InRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: number;
}

export interface ClientConfig {
  brokers: string[];
  /** Longest time the broker holds an empty fetch (the backbone's fetchWaitMs). */
  fetchWaitMs: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxBytesPerPartition: number;
}

export interface Adapter {
  /** Kafka's own name and version of what was loaded. */
  readonly version: string;
  connect(): Promise<void>;
  /** Creates the topic with the configs the backbone sets. */
  createTopic(topic: string, partitions: number): Promise<void>;
  /** One produce request (acks=all, idempotent), resolved once the broker acknowledged it. */
  send(topic: string, records: OutRecord[]): Promise<void>;
  /**
   * Consumes topic in group from earliest (no committed offset); onBatch gets one partition's records in offset
   * order and the next batch waits for it. The caller commits through the returned commit().
   */
  consume(topic: string, group: string, onBatch: BatchHandler): Promise<{ stop(): Promise<void> }>;
  close(): Promise<void>;
}

const TOPIC_CONFIGS = [
  { name: 'cleanup.policy', value: 'delete' },
  { name: 'max.message.bytes', value: String(8 * 1024 * 1024) },
];

function loadModule(name: string, modules: readonly string[]): string {
  // Resolved from the repo (installed packages) first, then from --modules (a scratch install).
  const paths = [REPO_ROOT, ...modules];
  return require.resolve(name, { paths });
}

function headersOf(h: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (h === undefined) return out;
  for (const k in h) {
    const v = h[k];
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (last !== undefined) out[k] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}

/** The eachBatch payload of kafkajs, which confluent's KafkaJS-compatible API copies. */
interface KafkaJsStyleBatch {
  batch: {
    partition: number;
    messages: { offset: string; key: Buffer | null | undefined; value: Buffer | null; headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>; timestamp: string }[];
  };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
}

type BatchHandler = (records: InRecord[], commit: (partition: number, next: number) => Promise<void>) => Promise<void>;

/** kafkajs-style eachBatch: the batch in the backbone's record shape to onBatch, then resolve and heartbeat. */
function eachBatchOf(onBatch: BatchHandler, commit: (partition: number, next: number) => Promise<void>): (p: KafkaJsStyleBatch) => Promise<void> {
  return async ({ batch, resolveOffset, heartbeat }) => {
    const partition = batch.partition;
    const records = batch.messages.map(
      (m): InRecord => ({
        partition,
        offset: Number(m.offset),
        key: m.key === null || m.key === undefined ? null : m.key.toString('utf8'),
        value: m.value,
        headers: headersOf(m.headers),
        timestamp: Number(m.timestamp),
      }),
    );
    if (records.length === 0) return;
    await onBatch(records, commit);
    resolveOffset(String(records[records.length - 1]!.offset));
    await heartbeat();
  };
}

/** What kafkajs's consumer and confluent's KafkaJS-compatible one share (as far as this bench uses them). */
interface KafkaJsStyleConsumer {
  connect(): Promise<void>;
  subscribe(o: { topics: string[]; fromBeginning?: boolean }): Promise<void>;
  commitOffsets(o: { topic: string; partition: number; offset: string }[]): Promise<void>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  run(o: any): Promise<void>;
  disconnect(): Promise<void>;
}

/** Subscribes and runs eachBatch one partition batch at a time, resolved by hand, committed by onBatch. */
async function runKafkaJsStyle(
  consumer: KafkaJsStyleConsumer,
  topic: string,
  onBatch: BatchHandler,
  extra: { subscribe: { fromBeginning?: boolean }; run: { autoCommit?: boolean } },
): Promise<{ stop(): Promise<void> }> {
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], ...extra.subscribe });
  const commit = (partition: number, next: number): Promise<void> => consumer.commitOffsets([{ topic, partition, offset: String(next) }]);
  await consumer.run({ ...extra.run, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: eachBatchOf(onBatch, commit) });
  return { stop: () => consumer.disconnect() };
}

async function closeKafkaJsStyle(consumers: { disconnect(): Promise<void> }[], producer: { disconnect(): Promise<void> }, admin: { disconnect(): Promise<void> }): Promise<void> {
  await Promise.allSettled([...consumers.map((c) => c.disconnect()), producer.disconnect(), admin.disconnect()]);
}

/** kafkajs 2.2.4 as the backbone runs it: the backbone's patches (loadKafkajs), its producer and consumer settings. */
export async function kafkajsAdapter(cfg: ClientConfig): Promise<Adapter> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadKafkajs } = require('@tributary/backbone') as typeof import('@tributary/backbone');
  const kjs = loadKafkajs();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require(loadModule('kafkajs/package.json', [])) as { version: string }).version;
  const kafka = new kjs.Kafka({ clientId: 'kafka-clients-bench', brokers: cfg.brokers, logLevel: kjs.logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: kjs.Partitioners.DefaultPartitioner });
  const consumers: { disconnect(): Promise<void> }[] = [];
  return {
    version: `kafkajs ${version} (backbone patches)`,
    async connect() {
      await admin.connect();
      await producer.connect();
    },
    async createTopic(topic, partitions) {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: TOPIC_CONFIGS }] });
    },
    async send(topic, records) {
      const now = String(Date.now());
      await producer.sendBatch({
        acks: -1,
        timeout: 30_000,
        compression: kjs.CompressionTypes.None,
        topicMessages: [{ topic, messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: now })) }],
      });
    },
    async consume(topic, group, onBatch) {
      const consumer = kafka.consumer({
        groupId: group,
        maxWaitTimeInMs: cfg.fetchWaitMs,
        minBytes: 1,
        heartbeatInterval: cfg.heartbeatIntervalMs,
        sessionTimeout: cfg.sessionTimeoutMs,
        maxBytesPerPartition: cfg.maxBytesPerPartition,
        allowAutoTopicCreation: false,
      });
      consumers.push(consumer);
      return runKafkaJsStyle(consumer, topic, onBatch, { subscribe: { fromBeginning: true }, run: { autoCommit: false } });
    },
    close: () => closeKafkaJsStyle(consumers, producer, admin),
  };
}

/**
 * @platformatic/kafka (pure JavaScript, ESM only). Keys and headers go through its string serializers, with the
 * Java client's partitioner (compatibilityPartitioner: murmur2 & 0x7fffffff; its default partitioner maps keys differently).
 * It has no eachBatch: the stream's messages buffered by one fetch are taken together, split per partition,
 * with the stream paused while the handler and the commit run.
 */
export async function platformaticAdapter(cfg: ClientConfig, modules: readonly string[]): Promise<Adapter> {
  // 2.x needs Node 22 (Promise.withResolvers, unguarded); 1.x polyfills it itself. Bench only, so 2.x can be
  // measured on the Node 20 this repo supports.
  const P = Promise as unknown as { withResolvers?: () => unknown };
  P.withResolvers ??= () => {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    return { promise, resolve, reject };
  };
  const entry = loadModule('@platformatic/kafka', modules);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pk: any = await import(entry);
  const pkgJson = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`)), 'package.json');
  const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const base = { clientId: 'kafka-clients-bench', bootstrapBrokers: cfg.brokers };
  const admin = new pk.Admin(base);
  // String keys and headers, Buffer values, as the backbone has them. (With the default Buffer serializers a string
  // header key makes send() hang in 1.35.0 instead of failing.)
  const s = pk.stringSerializer;
  const d = pk.stringDeserializer;
  const producer = new pk.Producer({
    ...base,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
    partitioner: pk.compatibilityPartitioner,
    serializers: { key: s, headerKey: s, headerValue: s },
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const consumers: any[] = [];
  return {
    version: `@platformatic/kafka ${version}`,
    async connect() {
      await producer.initIdempotentProducer({});
    },
    async createTopic(topic, partitions) {
      await admin.createTopics({ topics: [topic], partitions, replicas: 1, configs: TOPIC_CONFIGS });
      // Until every partition has a leader (createTopics returns before that).
      for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
        const meta = await admin.metadata({ topics: [topic] }).catch(() => undefined);
        const t = meta?.topics?.get(topic);
        if (t && t.partitionsCount === partitions && t.partitions.every((p: { leader: number }) => p.leader >= 0)) return;
        await new Promise((r) => setTimeout(r, delay));
      }
    },
    async send(topic, records) {
      const timestamp = BigInt(Date.now());
      await producer.send({ messages: records.map((r) => ({ topic, key: r.key, value: r.value, headers: r.headers, timestamp })) });
    },
    async consume(topic, group, onBatch) {
      const consumer = new pk.Consumer({
        ...base,
        groupId: group,
        sessionTimeout: cfg.sessionTimeoutMs,
        heartbeatInterval: cfg.heartbeatIntervalMs,
        maxWaitTime: cfg.fetchWaitMs,
        minBytes: 1,
        maxBytesPerPartition: cfg.maxBytesPerPartition,
        autocommit: false,
        deserializers: { key: d, headerKey: d, headerValue: d },
      });
      consumers.push(consumer);
      const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
      const epochs = new Map<number, number>();
      const commit = (partition: number, next: number): Promise<void> =>
        consumer.commit({ offsets: [{ topic, partition, offset: BigInt(next), leaderEpoch: epochs.get(partition) ?? 0 }] });
      let busy = false;
      const drain = async (): Promise<void> => {
        if (busy) return;
        busy = true;
        try {
          for (;;) {
            const byPartition = new Map<number, InRecord[]>();
            // eslint-disable-next-line @typescript-eslint/no-explicit-any
            let m: any;
            while ((m = stream.read()) !== null) {
              const partition: number = m.partition;
              epochs.set(partition, m.leaderEpoch);
              const headers: Record<string, string> = {};
              for (const [k, v] of m.headers as Map<string, string>) headers[k] = v;
              let list = byPartition.get(partition);
              if (list === undefined) byPartition.set(partition, (list = []));
              list.push({
                partition,
                offset: Number(m.offset),
                key: (m.key as string | undefined) ?? null,
                value: m.value ?? null,
                headers,
                timestamp: Number(m.timestamp),
              });
            }
            if (byPartition.size === 0) return;
            for (const records of byPartition.values()) await onBatch(records, commit);
          }
        } finally {
          busy = false;
        }
      };
      stream.on('readable', () => void drain());
      stream.on('error', (err: Error) => console.error(`[kafka-clients] platformatic stream error: ${err.message}`));
      return {
        stop: async () => {
          await stream.close();
          await consumer.close();
        },
      };
    },
    async close() {
      await Promise.allSettled([...consumers.map((c) => c.close()), producer.close(), admin.close()]);
    },
  };
}

/**
 * @confluentinc/kafka-javascript (librdkafka) through its KafkaJS-compatible API, the one that maps onto the
 * backbone: promise per send, eachBatch with manual commits. linger.ms 0 like the backbone's lingerMs.
 */
export async function confluentAdapter(cfg: ClientConfig, modules: readonly string[]): Promise<Adapter> {
  const entry = loadModule('@confluentinc/kafka-javascript', modules);
  // eslint-disable-next-line @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any
  const ck: any = require(entry);
  const { Kafka, logLevel } = ck.KafkaJS;
  const rd = ck.librdkafkaVersion ?? '?';
  const pkgJson = path.join(path.dirname(loadModule('@confluentinc/kafka-javascript/package.json', modules)), 'package.json');
  const version = (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const kafka = new Kafka({ kafkaJS: { clientId: 'kafka-clients-bench', brokers: cfg.brokers, logLevel: logLevel.NOTHING } });
  const admin = kafka.admin();
  const producer = kafka.producer({ kafkaJS: { idempotent: true, acks: -1, allowAutoTopicCreation: false }, 'linger.ms': 0 });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const consumers: any[] = [];
  return {
    version: `@confluentinc/kafka-javascript ${version} (librdkafka ${rd})`,
    async connect() {
      await admin.connect();
      await producer.connect();
    },
    async createTopic(topic, partitions) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: TOPIC_CONFIGS }] });
    },
    async send(topic, records) {
      await producer.send({ topic, messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers })) });
    },
    async consume(topic, group, onBatch) {
      const consumer = kafka.consumer({
        kafkaJS: {
          groupId: group,
          fromBeginning: true,
          autoCommit: false,
          maxWaitTimeInMs: cfg.fetchWaitMs,
          sessionTimeout: cfg.sessionTimeoutMs,
          heartbeatInterval: cfg.heartbeatIntervalMs,
          maxBytesPerPartition: cfg.maxBytesPerPartition,
        },
        'fetch.min.bytes': 1,
        // The KafkaJS-compatible eachBatch hands over at most 32 messages by default.
        'js.consumer.max.batch.size': -1,
      });
      consumers.push(consumer);
      // Its KafkaJS API takes fromBeginning and autoCommit in the consumer's config (above), not here.
      return runKafkaJsStyle(consumer, topic, onBatch, { subscribe: {}, run: {} });
    },
    close: () => closeKafkaJsStyle(consumers, producer, admin),
  };
}
