import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { Kafka, logLevel } from 'kafkajs';
import { ROOT, startBroker, BrokerProcess } from '../helpers/broker';
import { connect, end } from '../helpers/clients';

// Device messages are Kafka records any consumer can decode with only the published schema file:
// this test uses a plain kafkajs consumer and avsc, none of Tributary's code.
const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `t${process.pid}x${Date.now()}.`;
let b: BrokerProcess;

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  b = await startBroker({
    env: {
      TRIBUTARY_BACKBONE__TYPE: 'kafka', TRIBUTARY_BACKBONE__KAFKA__BROKERS: kafka, TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
      TRIBUTARY_BRIDGE__KAFKA__MAPPINGS: JSON.stringify([{ filter: 'devices/+/temp', topic: 'telemetry', format: 'json' }]),
    },
  });
});
after(async () => {
  await b?.stop();
});

it('publishes device messages to the Kafka messages topic as Avro with the published schema', async () => {
  const client = await connect(b.url, { protocolVersion: 5, clientId: 'dev-kafka-1' });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await client.publishAsync('devices/d1/temp', Buffer.from('21.5'), { qos: 1, properties: { contentType: 'text/plain', userProperties: { unit: 'C', traceparent } } });
  await end(client);

  const type = avro.Type.forSchema(JSON.parse(readFileSync(join(ROOT, 'libs', 'mqtt', 'schemas', 'message.v1.avsc'), 'utf8')) as avro.Schema);
  const consumer = new Kafka({ brokers: [kafka], clientId: 'plain-consumer', logLevel: logLevel.NOTHING }).consumer({ groupId: `${prefix}plain` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: `${prefix}messages`, fromBeginning: true });
    const found = await new Promise<{ value: Record<string, unknown>; key: string; header: string; trace: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no device message read from Kafka within 20 s')), 20_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const value = type.fromBuffer(message.value!) as Record<string, unknown>;
          if (value.topic !== 'devices/d1/temp') return; // $SYS and other records share the topic
          clearTimeout(timer);
          resolve({ value, key: message.key!.toString(), header: String(message.headers?.['tributary-schema']), trace: String(message.headers?.traceparent) });
        },
      });
    });
    assert.equal(found.key, 'devices/d1/temp');
    assert.equal(found.header, 'io.tributary.v1.Message');
    assert.equal(found.trace, traceparent, 'W3C trace context travels in the record headers');
    assert.equal((found.value.payload as Buffer).toString(), '21.5');
    assert.equal(found.value.qos, 1);
    assert.equal(found.value.from, 'dev-kafka-1');
    const props = found.value.properties as { contentType: string; userProperties: { key: string; value: string }[] };
    assert.equal(props.contentType, 'text/plain');
    assert.deepEqual(props.userProperties.map(({ key, value }) => [key, value]), [
      ['unit', 'C'],
      ['traceparent', traceparent],
    ]);
  } finally {
    await consumer.disconnect();
  }
});

it("delivers a plain Kafka producer's command to an MQTT subscriber (cloud-to-device)", async () => {
  const sub = await connect(b.url, { protocolVersion: 5, clientId: 'dev-kafka-2' });
  await sub.subscribeAsync('devices/d2/cmd', { qos: 1 });
  const got = new Promise<{ topic: string; payload: string; qos: number }>((resolve) =>
    sub.on('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), qos: packet.qos })),
  );
  const producer = new Kafka({ brokers: [kafka], clientId: 'plain-producer', logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    // The MQTT topic comes from the mqtt-topic header here; without it the record key is used.
    await producer.send({ topic: `${prefix}commands`, messages: [{ key: 'ignored-key', value: 'reboot', headers: { 'mqtt-topic': 'devices/d2/cmd', 'mqtt-qos': '1' } }] });
    const m = await Promise.race([got, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('command not delivered within 20 s')), 20_000))]);
    assert.deepEqual(m, { topic: 'devices/d2/cmd', payload: 'reboot', qos: 1 });
  } finally {
    await producer.disconnect();
    await end(sub);
  }
});

it('copies a mapped MQTT topic filter to its own Kafka topic as JSON', async () => {
  const client = await connect(b.url, { protocolVersion: 5, clientId: 'dev-kafka-3' });
  await client.publishAsync('devices/d3/temp', Buffer.from('19.0'), { qos: 1 });
  await client.publishAsync('devices/d3/other', Buffer.from('not mapped'), { qos: 1 });
  await end(client);
  const consumer = new Kafka({ brokers: [kafka], clientId: 'plain-json-consumer', logLevel: logLevel.NOTHING }).consumer({ groupId: `${prefix}json` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: `${prefix}telemetry`, fromBeginning: true });
    const seen: { topic: string; payload: string; from: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mapped message not read within 20 s (saw ${JSON.stringify(seen)})`)), 20_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(JSON.parse(message.value!.toString()) as { topic: string; payload: string; from: string });
          if (seen.some((m) => m.topic === 'devices/d3/temp')) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    const m = seen.find((x) => x.topic === 'devices/d3/temp')!;
    assert.equal(m.payload, '19.0');
    assert.equal(m.from, 'dev-kafka-3');
    assert.equal(seen.some((x) => x.topic === 'devices/d3/other'), false);
  } finally {
    await consumer.disconnect();
  }
});
