// The rule engine's sinks end to end in a real node, each against a real server started here:
// PostgreSQL rows inserted with bound parameters, a Kafka sink read back by a plain kafkajs
// consumer (the test Kafka, not the backbone: the node runs on its embedded default), and an MQTT
// bridge to a Mosquitto in both directions (egress sink; ingress source used as
// FROM "$sources/mqtt:<name>" and republished to a local subscriber).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import mqtt from 'mqtt';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { type MosquittoServer, startMosquitto } from '../helpers/mosquitto';
import { type PostgresServer, sql, startPostgres } from '../helpers/postgres';
import { clientTracker, waitForTopic, waitUntil } from '../helpers/util';

const kafkaAddress = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const kafkaTopic = `rules-sink-${process.pid}-${randomBytes(3).toString('hex')}`;

describe('rule engine sinks (PostgreSQL, Kafka, MQTT bridge)', () => {
  let b: BrokerProcess;
  let pg: PostgresServer;
  let remote: MosquittoServer;
  const { client } = clientTracker(() => b.url);

  before(async () => {
    assert.match(kafkaAddress, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
    [pg, remote] = await Promise.all([startPostgres(), startMosquitto()]);
    await sql(pg, 'CREATE TABLE t_mqtt_msg (msgid text, topic text, qos int, payload text, arrived timestamptz)');
    b = await startBroker({
      env: {
        TRIBUTARY_RULE_ENGINE__RULES: JSON.stringify({
          to_pg: { sql: 'SELECT * FROM "db/#"', actions: ['pgsql:store'] },
          to_kafka: { sql: 'SELECT payload.v as v, clientid, topic FROM "k/#"', actions: ['kafka_producer:out'] },
          to_remote: { sql: 'SELECT * FROM "up/#"', actions: ['mqtt:egress'] },
          from_remote: { sql: 'SELECT payload, topic as remote_topic FROM "$sources/mqtt:ingress"', actions: [{ function: 'republish', args: { topic: 'down/${remote_topic}', payload: '${payload}' } }] },
        }),
        TRIBUTARY_CONNECTORS: JSON.stringify({
          pgsql: { db: { server: pg.server, database: pg.database, username: pg.user, password: pg.password } },
          kafka_producer: { k: { bootstrap_hosts: kafkaAddress } },
          mqtt: { remote: { server: remote.server, proto_ver: 'v5', clientid_prefix: 'trib-' } },
        }),
        TRIBUTARY_ACTIONS: JSON.stringify({
          // The default SQL is EMQX's: insert into t_mqtt_msg(msgid, topic, qos, payload, arrived) ...
          pgsql: { store: { connector: 'db', parameters: {}, resource_opts: { batch_size: 10 } } },
          kafka_producer: { out: { connector: 'k', parameters: { topic: kafkaTopic, message: { key: '${clientid}', value: '${v}' } } } },
          mqtt: { egress: { connector: 'remote', parameters: { topic: 'from-tributary/${topic}', qos: 1, payload: '${payload}' } } },
        }),
        TRIBUTARY_SOURCES: JSON.stringify({ mqtt: { ingress: { connector: 'remote', parameters: { topic: 'to-tributary/#', qos: 1 } } } }),
      },
    });
  });
  after(async () => {
    await b?.stop();
    await Promise.all([pg?.stop(), remote?.stop()]);
  });

  it('PostgreSQL: EMQX default insert, payloads bound as parameters', async () => {
    const pub = await client({ clientId: 'pg-pub' });
    const evil = "x'); DROP TABLE t_mqtt_msg; --";
    for (const p of ['one', 'two', evil]) await pub.client.publishAsync('db/a', p, { qos: 1 });
    await waitUntil(async () => (await sql(pg, 'SELECT count(*)::int AS n FROM t_mqtt_msg'))[0]!.n === 3, 'three rows', 15_000);
    const rows = await sql(pg, 'SELECT topic, qos, payload, arrived FROM t_mqtt_msg ORDER BY arrived, payload');
    assert.deepEqual(rows.map((r) => r.payload).sort(), ['one', 'two', evil].sort());
    assert.ok(rows.every((r) => r.topic === 'db/a' && r.qos === 1 && r.arrived instanceof Date));
  });

  it('Kafka producer: records keyed by the template, read by a plain kafkajs consumer', async () => {
    const pub = await client({ clientId: 'kafka-pub' });
    for (let v = 1; v <= 5; v++) await pub.client.publishAsync('k/x', JSON.stringify({ v }), { qos: 1 });
    const kafka = new Kafka({ brokers: [kafkaAddress], logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${kafkaTopic}-reader` });
    const got: { key: string; value: string }[] = [];
    try {
      await consumer.connect();
      await waitUntil(async () => {
        try {
          await consumer.subscribe({ topic: kafkaTopic, fromBeginning: true });
          return true;
        } catch {
          return false;
        }
      }, 'the sink created the topic', 15_000);
      await consumer.run({ eachMessage: async ({ message }) => void got.push({ key: message.key!.toString(), value: message.value!.toString() }) });
      await waitUntil(() => got.length >= 5, `five records (got ${got.length})`, 30_000);
    } finally {
      await consumer.disconnect();
    }
    assert.deepEqual(got.map((r) => r.value), ['1', '2', '3', '4', '5']);
    assert.ok(got.every((r) => r.key === 'kafka-pub'));
  });

  it('MQTT bridge: egress to Mosquitto, and ingress from it into a rule', async () => {
    const remoteClient = await mqtt.connectAsync({ host: '127.0.0.1', port: remote.port, clientId: 'remote-side', reconnectPeriod: 0 });
    try {
      const inbox: { topic: string; payload: string }[] = [];
      remoteClient.on('message', (topic, payload) => inbox.push({ topic, payload: payload.toString() }));
      await remoteClient.subscribeAsync('from-tributary/#', { qos: 1 });
      const local = await client({ clientId: 'bridge-local' });
      await local.client.subscribeAsync('down/#', { qos: 1 });
      await local.client.publishAsync('up/1', 'to remote', { qos: 1 });
      await waitUntil(() => inbox.some((m) => m.topic === 'from-tributary/up/1' && m.payload === 'to remote'), 'egress reached Mosquitto', 15_000);
      await waitUntil(async () => {
        await remoteClient.publishAsync('to-tributary/7', 'from remote', { qos: 1 });
        return local.inbox.messages.some((m) => m.topic === 'down/to-tributary/7');
      }, 'ingress reached the local subscriber', 15_000);
      assert.equal((await waitForTopic(local.inbox, 'down/to-tributary/7')).payload.toString(), 'from remote');
    } finally {
      await remoteClient.endAsync();
    }
  });
});
