import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { type Admin, Kafka, type KafkaMessage, logLevel } from 'kafkajs';
import { ConfigProblem } from '@tributary/common';
import { type Connector, createConnector, type KafkaRecord, parseAction, parseConnector } from '../src/sinks';
import type { ValueMap } from '@tributary/rulesql';
import { closedPort, connectorSpec, sinkErrorOf, sinkOn } from './helpers/sinks';

const bootstrap = process.env.TRIBUTARY_TEST_KAFKA;
const skip = bootstrap ? false : 'TRIBUTARY_TEST_KAFKA is not set (host:port of a Kafka broker to test against)';
const run = `${process.pid}-${Date.now()}`;
const topics = { keyed: `tributary-sinks-keyed-${run}`, random: `tributary-sinks-random-${run}`, small: `tributary-sinks-small-${run}` };

let admin: Admin;
const connectors: Connector[] = [];

before(async () => {
  if (skip) return;
  admin = new Kafka({ clientId: 'sinks-test-admin', brokers: [bootstrap!], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.keyed, numPartitions: 3 },
      { topic: topics.random, numPartitions: 2 },
      { topic: topics.small, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1024' }] },
    ],
  });
});

after(async () => {
  await Promise.all(connectors.map((c) => c.stop()));
  if (admin) {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
  }
});

async function kafkaSink(parameters: Record<string, unknown>): Promise<Awaited<ReturnType<typeof sinkOn>>> {
  const made = await sinkOn('kafka_producer', { bootstrap_hosts: bootstrap }, parameters, `k${connectors.length}`);
  connectors.push(made.connector);
  return made;
}

/** The first `n` records of a topic with their partitions, read by a plain kafkajs consumer (20 s at most). */
async function readBack(topic: string, n: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = new Kafka({ clientId: 'sinks-test-reader', brokers: [bootstrap!], logLevel: logLevel.NOTHING }).consumer({ groupId: `sinks-test-${topic}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise((resolve, reject) => {
      const got: { partition: number; message: KafkaMessage }[] = [];
      const timer = setTimeout(() => reject(new Error(`read ${got.length} of ${n} records of ${topic} within 20 s`)), 20_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          got.push({ partition, message });
          if (got.length === n) {
            clearTimeout(timer);
            resolve(got);
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
}

const event = (i: number, extra: ValueMap = {}): ValueMap => ({
  clientid: 'dev-1',
  topic: 'sensors/1',
  payload: `{"seq":${i}}`,
  timestamp: 1_700_000_000_000 + i,
  pub_props: { 'User-Property': { site: 'north', seq: String(i) } },
  ...extra,
});

describe('Kafka producer sink', { skip }, () => {
  it("sends a batch with EMQX's default key, value and timestamp, key-dispatched in order, with headers", async () => {
    const { sink, connector } = await kafkaSink({
      topic: 'tributary-sinks-${kind}-' + run,
      partition_strategy: 'key_dispatch',
      compression: 'gzip',
      kafka_headers: "${pub_props.'User-Property'}",
      kafka_ext_headers: [{ kafka_ext_header_key: 'x-from', kafka_ext_header_value: '${clientid}' }],
    });
    assert.equal(connector.status(), 'connected');
    // 12 records of one key over 3 partitions: random placement would use one partition with p = 3^-11.
    const batch = Array.from({ length: 12 }, (_, i) => event(i, { kind: 'keyed' }));
    await sink.send(batch);
    const got = await readBack(topics.keyed, 12);
    assert.equal(new Set(got.map((g) => g.partition)).size, 1, 'one key, one partition');
    assert.deepEqual(
      got.map((g) => JSON.parse(g.message.value!.toString()) as ValueMap),
      batch,
      'value ${.}: the whole data map as JSON, in order',
    );
    const first = got[0]!.message;
    assert.equal(first.key!.toString(), 'dev-1');
    assert.equal(first.timestamp, '1700000000000');
    assert.equal(first.headers!.site!.toString(), 'north');
    assert.equal(first.headers!.seq!.toString(), '0');
    assert.equal(first.headers!['x-from']!.toString(), 'dev-1');
    const r = sink.render(batch[1]!) as KafkaRecord;
    assert.deepEqual(r, { topic: topics.keyed, key: 'dev-1', value: JSON.stringify(batch[1]), timestamp: '1700000000001', headers: { site: 'north', seq: '1', 'x-from': 'dev-1' } });
  });

  it('sends records without a key when the key field is missing, with templates for value and timestamp', async () => {
    const { sink } = await kafkaSink({ topic: topics.random, required_acks: 'leader_only', message: { value: '${payload.seq}/${clientid}', timestamp: '${ts}' } });
    await sink.send([{ payload: '{"seq":7}', ts: 'not a number' }]);
    // partition_strategy random: 20 records of one key land on both partitions (all on one: p = 2^-19).
    await sink.send(Array.from({ length: 20 }, (_, i) => event(i)));
    const all = await readBack(topics.random, 21);
    assert.equal(new Set(all.map((g) => g.partition)).size, 2);
    const got = all.find((g) => g.message.key === null);
    assert.equal(got!.message.value!.toString(), '7/undefined');
    assert.ok(Math.abs(Number(got!.message.timestamp) - Date.now()) < 60_000, 'not a number: the producer time');
  });

  it('refuses records the broker cannot take and topic names Kafka cannot have, permanently', async () => {
    const { sink } = await kafkaSink({ topic: '${t}' });
    const big = await sinkErrorOf(sink.send([{ t: topics.small, payload: 'x'.repeat(4096) }]));
    assert.equal(big.retriable, false);
    assert.match(big.message, /MESSAGE_TOO_LARGE/);
    const bad = await sinkErrorOf(sink.send([{ t: 'not a topic/name' }]));
    assert.equal(bad.retriable, false);
    assert.match(bad.message, /not a Kafka topic name/);
  });

  it('rejects as retriable when no broker answers', async () => {
    const port = await closedPort();
    const down = createConnector(connectorSpec('kafka_producer', 'down', { bootstrap_hosts: `127.0.0.1:${port}`, connect_timeout: '1s' }));
    connectors.push(down);
    await down.start();
    assert.equal(down.status(), 'disconnected');
    const { sink } = await sinkOn('kafka_producer', { bootstrap_hosts: `127.0.0.1:${port}`, connect_timeout: '1s' }, { topic: 'x' }, 'down2');
    const err = await sinkErrorOf(sink.send([event(0)]));
    assert.equal(err.retriable, true);
    assert.equal(err.code, 'SINK_UNAVAILABLE');
  });
});

describe('Kafka producer config', () => {
  it('validates connectors and actions, naming the field', () => {
    for (const [p, want] of [
      [parseConnector('kafka_producer', 'k', {}), /^connectors\.kafka_producer\.k\.bootstrap_hosts: required/],
      [parseConnector('kafka_producer', 'k', { bootstrap_hosts: 'a:1,b:x' }), /^connectors\.kafka_producer\.k\.bootstrap_hosts: /],
      [parseConnector('kafka_producer', 'k', { bootstrap_hosts: 'a:1', authentication: { mechanism: 'md5', username: 'u' } }), /^connectors\.kafka_producer\.k\.authentication\.mechanism: /],
      [parseConnector('kafka_producer', 'k', { bootstrap_hosts: 'a:1', authentication: { kerberos_principal: 'p' } }), /authentication: kerberos/],
      [parseAction('kafka_producer', 'k', { connector: 'k', parameters: {} }), /^actions\.kafka_producer\.k\.parameters\.topic: required/],
      [parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', compression: 'snappy' } }), /parameters\.compression: expected one of no_compression, gzip/],
      [parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', kafka_ext_headers: [{ kafka_ext_header_key: 'a' }] } }), /parameters\.kafka_ext_headers\.0\.kafka_ext_header_value: required/],
    ] as const) {
      assert.ok(p instanceof ConfigProblem && want.test(p.message), `${want}: ${JSON.stringify(p)}`);
    }
    const a = parseAction('kafka_producer', 'k', { connector: 'k', parameters: { topic: 't', buffer: { mode: 'memory' }, max_batch_bytes: '1MB' } });
    assert.ok(!(a instanceof ConfigProblem) && a.type === 'kafka_producer');
    assert.deepEqual({ ...a.parameters.message }, { key: '${.clientid}', value: '${.}', timestamp: '${.timestamp}' });
    assert.equal(a.parameters.partition_strategy, 'random');
    assert.equal(a.parameters.required_acks, 'all_isr');
    const c = parseConnector('kafka_producer', 'k', { bootstrap_hosts: 'a:1,b', authentication: { mechanism: 'scram_sha_512', username: 'u', password: 'p' } });
    assert.ok(!(c instanceof ConfigProblem) && c.type === 'kafka_producer');
    assert.deepEqual(c.authentication, { mechanism: 'scram_sha_512', username: 'u', password: 'p' });
  });
});
