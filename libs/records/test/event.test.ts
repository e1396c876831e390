import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { EVENT_HEADER, EVENT_V1, eventCodec, eventHeaders, EventRecord, RecordError, schemaFile } from '../src';

const fixture = (name: string): Buffer => readFileSync(join(__dirname, '..', '..', 'test', 'fixtures', name));

/** Every kind of column value: text and bytes, integers and other numbers, null, booleans, nested lists and maps. */
const EVENT: EventRecord = {
  event: 'message.delivered',
  timestamp: 1_764_000_000_123,
  node: 'tributary@127.0.0.1',
  clientid: 'sub-1',
  username: undefined,
  columns: {
    id: '019AB6E8F97B0000000000000000002A',
    payload: Buffer.from([0xff, 0x00, 0xfe]),
    topic: 't/1',
    qos: 1,
    ratio: 0.5,
    negativeZero: -0,
    big: 2 ** 60,
    flags: { retain: false, dup: false },
    pub_props: { 'User-Property': { a: '1' }, 'User-Property-Pairs': [{ key: 'a', value: '1' }], 'Correlation-Data': 'text' },
    nothing: null,
    list: [1, 'two', null, [true], {}],
    client_attrs: {},
  },
};

describe('event records (io.tributary.v1.Event)', () => {
  it('round-trips every kind of column value exactly: bytes stay bytes, -0 and 0.5 stay doubles, 1 stays an integer', () => {
    const back = eventCodec.decode(eventCodec.encode(EVENT));
    assert.deepStrictEqual(back, EVENT);
    assert.ok(Buffer.isBuffer(back.columns.payload));
    assert.ok(Object.is(back.columns.negativeZero, -0));
  });

  it('decodes the committed encoding and writes it again', () => {
    assert.deepStrictEqual(eventCodec.decode(fixture('event.v1.avro')), EVENT);
    assert.deepEqual(eventCodec.encode(EVENT), fixture('event.v1.avro'));
  });

  it('leaves undefined columns out (a rule reads a missing column as undefined) and keeps a username', () => {
    const back = eventCodec.decode(eventCodec.encode({ ...EVENT, username: 'u', columns: { a: undefined, b: 1, m: { x: undefined } } }));
    assert.deepStrictEqual(back.columns, { b: 1, m: {} });
    assert.equal(back.username, 'u');
  });

  it('is readable by any Avro reader holding schemas/event/v1.avsc alone (as a Kafka consumer outside Tributary would)', () => {
    const outside = avro.Type.forSchema(JSON.parse(readFileSync(schemaFile('event', 1), 'utf8')) as avro.Schema, { wrapUnions: true });
    assert.equal(outside.name, EVENT_V1);
    const r = outside.fromBuffer(eventCodec.encode(EVENT)) as { event: string; timestamp: number; clientid: { string: string }; columns: Record<string, { value: Record<string, unknown> }> };
    assert.equal(r.event, 'message.delivered');
    assert.equal(r.timestamp, EVENT.timestamp);
    assert.equal(r.clientid.string, 'sub-1');
    assert.equal(r.columns.qos!.value.long, 1);
    assert.equal(r.columns.ratio!.value.double, 0.5);
    assert.equal(r.columns.topic!.value.string, 't/1');
    assert.deepEqual(r.columns.payload!.value.bytes, Buffer.from([0xff, 0x00, 0xfe]));
  });

  it('names the schema and the event in frozen headers, one object per event name', () => {
    const h = eventHeaders('client.connected');
    assert.deepEqual(h, { 'tributary-schema': EVENT_V1, [EVENT_HEADER]: 'client.connected' });
    assert.equal(eventHeaders('client.connected'), h);
    assert.ok(Object.isFrozen(h));
  });

  it('rejects corrupt values, an empty event name and a value that is no column value with a RecordError', () => {
    assert.throws(() => eventCodec.decode(Buffer.from([1, 2, 3])), RecordError);
    assert.throws(() => eventCodec.decode(eventCodec.encode(EVENT).subarray(0, 20)), RecordError);
    assert.throws(() => eventCodec.encode({ ...EVENT, event: '' }), /empty event name/);
    assert.throws(() => eventCodec.encode({ ...EVENT, columns: { f: (() => 1) as never } }), (err: unknown) => err instanceof RecordError && /event column f/.test(err.message));
  });
});
