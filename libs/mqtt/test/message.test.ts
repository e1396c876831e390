import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as avro from 'avsc';
import { decodeMessage, encodeMessage, Message, MESSAGE_SCHEMA_FILE } from '../src';

const msg: Message = {
  topic: 'sensors/ü/1',
  payload: Buffer.from([0, 1, 2, 255]),
  qos: 2,
  retain: true,
  from: 'dev-1',
  timestamp: 1_764_000_000_123,
  properties: { contentType: 'application/json', messageExpiryInterval: 60, correlationData: Buffer.from('c'), userProperties: { a: '1', b: ['2', '3'] }, payloadFormatIndicator: 0 },
  offset: -1,
};

it('round-trips a message with every property through the Avro encoding', () => {
  const back = decodeMessage(encodeMessage(msg), 42);
  assert.deepEqual(back, { ...msg, offset: 42 });
  const bare = decodeMessage(encodeMessage({ ...msg, properties: undefined }));
  assert.equal(bare.properties, undefined);
});

it('is readable with nothing but the published schema file', () => {
  const type = avro.Type.forSchema(JSON.parse(readFileSync(MESSAGE_SCHEMA_FILE, 'utf8')) as avro.Schema);
  const r = type.fromBuffer(encodeMessage(msg)) as { topic: string; payload: Buffer; properties: { userProperties: { key: string; value: string }[] } };
  assert.equal(r.topic, msg.topic);
  assert.deepEqual(r.payload, msg.payload);
  assert.deepEqual(r.properties.userProperties.map(({ key, value }) => ({ key, value })), [
    { key: 'a', value: '1' },
    { key: 'b', value: '2' },
    { key: 'b', value: '3' },
  ]);
});

it('encodes messages without properties byte for byte as avsc does', () => {
  const type = avro.Type.forSchema(JSON.parse(readFileSync(MESSAGE_SCHEMA_FILE, 'utf8')) as avro.Schema);
  for (const [topic, size, from, timestamp] of [
    ['a', 0, '', 0],
    ['sensors/ü/1', 63, 'dev-1', 1_764_000_000_123],
    ['x'.repeat(300), 200, 'c'.repeat(130), 2 ** 45 + 7],
    ['t', 70_000, 'p', 1],
  ] as const) {
    const m: Message = { topic, payload: Buffer.alloc(size, 9), qos: 1, retain: size % 2 === 0, from, timestamp, properties: undefined, offset: -1 };
    const want = type.toBuffer({ topic, payload: m.payload, qos: 1, retain: m.retain, from, timestamp, properties: null });
    assert.deepEqual(encodeMessage(m), want, topic.slice(0, 20));
    assert.deepEqual(decodeMessage(want), m);
  }
});
