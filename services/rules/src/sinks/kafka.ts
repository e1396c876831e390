import { hostname } from 'node:os';
import { loadKafkajs } from '@tributary/backbone';
import type { Admin, ICustomPartitioner, IHeaders, Kafka, Message, Producer, SASLOptions } from 'kafkajs';
import { bytes, ConfigProblem, duration, type Infer, int, isRetriable, type Leaf, oneOf, str } from '@tributary/common';
import { compileTemplate, type Template } from '../template';
import { isMap, jsonEncode, str as strOf, type Value, type ValueMap } from '@tributary/rulesql';
import { actionCommon, checkedString, connectorCommon, listOf, parseHostPort, required, sectionLeaf, sslFields, template, unused, withIgnored } from './fields';
import { BaseConnector, bytesOf, type ConnectorStatus, messageOf, rejected, type Sink, unavailable } from './types';

/** `bootstrap_hosts`: "host:port,host:port" (port 9092 when left out). */
function checkHosts(raw: string): ConfigProblem | undefined {
  for (const h of raw.split(',')) {
    const hp = parseHostPort(h, 9092);
    if (hp instanceof ConfigProblem) return hp;
  }
  return undefined;
}

/** The brokers of a bootstrap_hosts value, as kafkajs takes them. */
export function brokersOf(hosts: string): string[] {
  return hosts.split(',').map((h) => {
    const hp = parseHostPort(h, 9092) as { host: string; port: number };
    return `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`;
  });
}

const saslFields = {
  mechanism: required(oneOf(['plain', 'scram_sha_256', 'scram_sha_512'], 'plain', 'SASL mechanism.')),
  username: required(str('', 'SASL user name.', { nonEmpty: true })),
  password: str('', 'SASL password.'),
};

/** EMQX's `authentication`: "none" or {mechanism, username, password} (kerberos is not supported). */
export type KafkaAuthentication = 'none' | Infer<typeof saslFields>;

function authenticationLeaf(): Leaf<KafkaAuthentication> {
  const sasl = sectionLeaf(saslFields, 'SASL');
  return {
    kind: 'leaf',
    default: 'none',
    doc: '"none" or {mechanism: plain | scram_sha_256 | scram_sha_512, username, password}.',
    parse: (raw) => {
      if (raw === 'none') return 'none';
      if (raw && typeof raw === 'object' && ('kerberos_principal' in raw || 'kerberos_keytab_file' in raw)) return new ConfigProblem('kerberos (GSSAPI) is not supported; use plain or scram_sha_256/512');
      return sasl.parse(raw);
    },
  };
}

/**
 * `connectors.kafka_producer.<name>`. min_metadata_refresh_interval and metadata_request_timeout
 * are accepted for EMQX configurations and not used (kafkajs refreshes metadata on errors).
 */
export const kafkaConnectorFields = withIgnored(
  {
    ...connectorCommon,
    bootstrap_hosts: required(checkedString('', 'Kafka brokers to bootstrap from: "host:port,host:port".', checkHosts, 'expected "host:port,host:port"')),
    authentication: authenticationLeaf(),
    connect_timeout: duration(5_000, 'How long a broker connect may take.', 1, 600_000),
    min_metadata_refresh_interval: unused(duration(3_000, 'EMQX: the shortest wait between metadata refreshes (here kafkajs refreshes on errors).', 0)),
    metadata_request_timeout: duration(5_000, 'How long a metadata request of the health check may take (on top of connect_timeout).', 1),
    ssl: sslFields,
  },
  ['socket_opts', 'health_check_topic', 'kerberos'],
);

const extHeaderFields = {
  kafka_ext_header_key: required(template('', 'Header name (a template).')),
  kafka_ext_header_value: required(template('', 'Header value (a template).')),
};

/**
 * `actions.kafka_producer.<name>.parameters`. Compression: no_compression and gzip (built into
 * kafkajs); snappy, lz4 and zstd need codecs we do not ship and are refused. max_batch_bytes,
 * max_linger_time, max_inflight, buffer and query_mode are accepted for EMQX configurations and
 * not used: a batch of the buffer worker is one produce request.
 */
export const kafkaActionParams = withIgnored(
  {
    topic: required(template('', 'The Kafka topic (a template).')),
    message: {
      key: template('${.clientid}', 'Record key (a template); a lone placeholder that is missing gives no key.'),
      value: template('${.}', 'Record value (a template).'),
      timestamp: template('${.timestamp}', 'Record timestamp in ms (a template); not a number: the producer time.'),
    },
    partition_strategy: oneOf(['random', 'key_dispatch'], 'random', 'random: any partition; key_dispatch: by the hash of the key (murmur2, as Java clients).'),
    required_acks: oneOf(['all_isr', 'leader_only', 'none'], 'all_isr', 'Acknowledgement a produce waits for.'),
    compression: oneOf(['no_compression', 'gzip'], 'no_compression', 'Record batch compression (snappy, lz4, zstd are not supported).'),
    kafka_headers: template('', 'A placeholder giving a map (or a list of {key, value}) of headers, e.g. ${pub_props.\'User-Property\'}.'),
    kafka_ext_headers: listOf([], 'More headers: [{kafka_ext_header_key, kafka_ext_header_value}] (templates).', sectionLeaf(extHeaderFields, 'a header')),
    kafka_header_value_encode_mode: oneOf(['none', 'json'], 'none', 'none: text as it is, other values as JSON; json: every value as JSON.'),
    max_batch_bytes: unused(bytes(896 * 1024, 'EMQX: the largest produce batch (here a batch is resource_opts.batch_size requests).', 1)),
    max_linger_time: unused(duration(0, 'EMQX: how long the producer waits to fill a batch.', 0)),
    max_inflight: unused(int(10, 'EMQX: produce requests in flight per partition (here one batch at a time, in order).', 1)),
  },
  ['max_linger_bytes', 'partition_count_refresh_interval', 'query_mode', 'sync_query_timeout', 'buffer', 'partitions_limit'],
);

export type KafkaConnectorSpec = { readonly type: 'kafka_producer'; readonly name: string } & Infer<typeof kafkaConnectorFields>;
export type KafkaActionParams = Infer<typeof kafkaActionParams>;
export type KafkaActionSpec = { readonly type: 'kafka_producer'; readonly name: string } & Infer<typeof actionCommon> & { readonly parameters: KafkaActionParams };

type Strategy = KafkaActionParams['partition_strategy'];

const ACKS = { all_isr: -1, leader_only: 1, none: 0 } as const;
const SASL = { plain: 'plain', scram_sha_256: 'scram-sha-256', scram_sha_512: 'scram-sha-512' } as const;

/** Kafka errors about the records themselves: sending them again cannot succeed. */
const PERMANENT_KAFKA = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TOPIC_EXCEPTION', 'INVALID_TIMESTAMP', 'UNSUPPORTED_FOR_MESSAGE_FORMAT']);

/** The kafkajs error type (MESSAGE_TOO_LARGE, ...) somewhere in the cause chain that makes a failure permanent. */
function permanentType(err: unknown): string | undefined {
  for (let e = err as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (typeof e.type === 'string' && PERMANENT_KAFKA.has(e.type)) return e.type;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return undefined;
}

/** Kafka topic names: 1-249 of [a-zA-Z0-9._-]. */
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** A partitioner picking a random partition for each record (EMQX's `random`). */
const randomPartitioner: ICustomPartitioner = () => ({ partitionMetadata }) => {
  const p = partitionMetadata[Math.floor(Math.random() * partitionMetadata.length)];
  return p ? p.partitionId : 0;
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A Kafka producer connector (kafkajs): one client; a producer per partition strategy in use, connected on first send. */
export class KafkaConnector extends BaseConnector<KafkaConnectorSpec> {
  readonly type = 'kafka_producer';
  private kafka: Kafka | undefined;
  private admin: Admin | undefined;
  private readonly producers = new Map<Strategy, Promise<Producer>>();

  async start(): Promise<void> {
    if (this.kafka) return;
    const brokers = brokersOf(this.spec.bootstrap_hosts);
    const ssl = this.tls(brokers[0]!.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''));
    const auth = this.spec.authentication;
    const logger = this.opts.logger;
    const { Kafka, logLevel } = loadKafkajs();
    this.kafka = new Kafka({
      clientId: `tributary-${this.opts.node ?? hostname()}-${this.name}`,
      brokers,
      connectionTimeout: this.spec.connect_timeout,
      ...(ssl ? { ssl } : {}),
      ...(auth === 'none' ? {} : { sasl: { mechanism: SASL[auth.mechanism], username: auth.username, password: auth.password } as SASLOptions }),
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: logger ? logLevel.WARN : logLevel.NOTHING,
      ...(logger ? { logCreator: () => ({ namespace, log }) => logger.debug({ kafkajs: namespace, connector: this.name }, `kafkajs: ${log.message}`) } : {}),
    });
    this.admin = this.kafka.admin({ retry: { retries: 0 } });
    this.state = 'connecting';
    await this.healthCheck();
  }

  async stop(): Promise<void> {
    const producers = [...this.producers.values()];
    this.producers.clear();
    const admin = this.admin;
    this.kafka = undefined;
    this.admin = undefined;
    this.state = 'disconnected';
    await Promise.allSettled([...producers.map(async (p) => (await p).disconnect()), admin?.disconnect()]);
  }

  /** Connects the admin client and asks for the cluster's brokers. */
  async healthCheck(): Promise<ConnectorStatus> {
    const admin = this.admin;
    if (!admin) return 'disconnected';
    try {
      await withTimeout(
        (async () => {
          await admin.connect();
          await admin.describeCluster();
        })(),
        this.spec.connect_timeout + this.spec.metadata_request_timeout,
        'kafka health check',
      );
      if (this.admin === admin) this.state = 'connected';
    } catch {
      if (this.admin === admin) this.state = 'disconnected';
    }
    return this.state;
  }

  /** The connected producer of a partition strategy (connects it on first use; a failed connect is tried again next time). */
  producer(strategy: Strategy): Promise<Producer> {
    const kafka = this.kafka;
    if (!kafka) return Promise.reject(new Error('connector stopped'));
    let p = this.producers.get(strategy);
    if (!p) {
      const producer = kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: strategy === 'random' ? randomPartitioner : loadKafkajs().Partitioners.DefaultPartitioner,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      p = producer.connect().then(() => producer);
      this.producers.set(strategy, p);
      p.catch(() => {
        if (this.producers.get(strategy) === p) this.producers.delete(strategy);
      });
    }
    return p;
  }

  /** Marks the outcome of a produce in the status. */
  observed(ok: boolean): void {
    if (this.kafka) this.state = ok ? 'connected' : 'disconnected';
  }
}

/** One rendered record of a Kafka action. */
export interface KafkaRecord {
  topic: string;
  key: string | null;
  value: string;
  timestamp: string | undefined;
  headers: Record<string, string | string[]>;
}

/** A Kafka producer action: a batch is one produce (per topic, in order). */
export class KafkaSink implements Sink {
  readonly id: string;
  private readonly topic: Template;
  private readonly key: Template;
  private readonly value: Template;
  private readonly timestamp: Template;
  private readonly headers: Template | undefined;
  private readonly extHeaders: [Template, Template][];

  constructor(
    readonly spec: KafkaActionSpec,
    private readonly connector: KafkaConnector,
  ) {
    this.id = `kafka_producer:${spec.name}`;
    const p = spec.parameters;
    this.topic = compileTemplate(p.topic);
    this.key = compileTemplate(p.message.key);
    this.value = compileTemplate(p.message.value);
    this.timestamp = compileTemplate(p.message.timestamp);
    this.headers = p.kafka_headers ? compileTemplate(p.kafka_headers) : undefined;
    this.extHeaders = p.kafka_ext_headers.map((h) => [compileTemplate(h.kafka_ext_header_key), compileTemplate(h.kafka_ext_header_value)]);
  }

  private headerValue(v: Value): string | Buffer {
    if (this.spec.parameters.kafka_header_value_encode_mode === 'json') return jsonEncode(v);
    return typeof v === 'string' || Buffer.isBuffer(v) ? v : strOf(v);
  }

  private headersOf(data: ValueMap): IHeaders | undefined {
    if (!this.headers && this.extHeaders.length === 0) return undefined;
    const out: IHeaders = {};
    const add = (k: string, v: string | Buffer): void => {
      const had = out[k];
      out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
    };
    const given = this.headers?.value(data);
    if (isMap(given)) for (const [k, v] of Object.entries(given)) add(k, this.headerValue(v));
    else if (Array.isArray(given)) {
      for (const item of given) if (isMap(item) && typeof item.key === 'string') add(item.key, this.headerValue(item.value));
    }
    for (const [k, v] of this.extHeaders) add(k.render(data), this.headerValue(v.value(data)));
    return out;
  }

  private keyOf(data: ValueMap): Buffer | null {
    // value() of a template that is more than one placeholder is text: only a lone one can be missing.
    const v = this.key.value(data);
    return v === undefined || v === null ? null : bytesOf(this.key, data);
  }

  private timestampOf(data: ValueMap): string | undefined {
    const v = this.timestamp.value(data);
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    return Number.isInteger(n) && n >= 0 ? String(n) : undefined;
  }

  private recordOf(data: ValueMap): { topic: string; message: Message } {
    const timestamp = this.timestampOf(data);
    const headers = this.headersOf(data);
    return {
      topic: this.topic.render(data),
      message: { key: this.keyOf(data), value: bytesOf(this.value, data), ...(timestamp ? { timestamp } : {}), ...(headers ? { headers } : {}) },
    };
  }

  render(data: ValueMap): KafkaRecord {
    const { topic, message } = this.recordOf(data);
    const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = Array.isArray(v) ? v.map(text) : text(v);
    return { topic, key: message.key === null || message.key === undefined ? null : text(message.key), value: text(message.value), timestamp: message.timestamp, headers };
  }

  /** Batches waiting for the produce in flight (they go out together, in order, when it returns). */
  private waiting: { messages: [string, Message][]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private producing = false;

  /**
   * Delivers a batch in order with everything before it: one produce at a time, and the batches
   * that arrive meanwhile (the buffer keeps inflight_window of them in flight) go out together
   * in the next one, so records keep their order per partition however many are in flight.
   */
  send(batch: readonly ValueMap[]): Promise<void> {
    if (batch.length === 0) return Promise.resolve();
    const messages: [string, Message][] = [];
    for (const data of batch) {
      const { topic, message } = this.recordOf(data);
      if (!TOPIC.test(topic)) return Promise.reject(rejected(this.id, `the rendered topic ${JSON.stringify(topic)} is not a Kafka topic name`));
      messages.push([topic, message]);
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      if (!this.producing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.producing = true;
    try {
      while (this.waiting.length > 0) {
        const calls = this.waiting.splice(0);
        try {
          await this.produce(calls.flatMap((c) => c.messages));
          for (const c of calls) c.resolve();
        } catch (err) {
          if (calls.length === 1 || isRetriable(err)) {
            for (const c of calls) c.reject(err);
            continue;
          }
          // Refused for good: find which batch Kafka refuses, one at a time, so the others are not dropped with it.
          for (const c of calls) await this.produce(c.messages).then(c.resolve, c.reject);
        }
      }
    } finally {
      this.producing = false;
    }
  }

  private async produce(records: readonly [string, Message][]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const [topic, message] of records) {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(message);
    }
    const p = this.spec.parameters;
    let producer: Producer;
    try {
      producer = await this.connector.producer(p.partition_strategy);
    } catch (err) {
      this.connector.observed(false);
      throw unavailable(this.id, `cannot connect to Kafka: ${messageOf(err)}`, err);
    }
    try {
      await producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        acks: ACKS[p.required_acks],
        compression: p.compression === 'gzip' ? loadKafkajs().CompressionTypes.GZIP : loadKafkajs().CompressionTypes.None,
      });
      this.connector.observed(true);
    } catch (err) {
      const type = permanentType(err);
      if (type) throw rejected(this.id, `Kafka refused the records (${type}): ${messageOf(err)}`, err);
      this.connector.observed(false);
      throw unavailable(this.id, `produce to ${[...byTopic.keys()].join(', ')} failed: ${messageOf(err)}`, err);
    }
  }
}
