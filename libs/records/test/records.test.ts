import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeMessage, encodeMessage, newMessage } from '@tributary/mqtt';
import { framed, gatewayLeaseCodec, messageCodec, RECORD_MAGIC, RecordError, RecordReader, SessionRecord, sessionCodec } from '../src';

// Fixtures: *.v1.json were written by the gateway before records were versioned (a persistent
// session with subscriptions, QoS 1/2 in flight and a PUBREC'd incoming QoS 2; a scaled-out
// session owned by gw-a with a delayed will; gw-a's lease), copied from the table values;
// *.v2.avro are this codec's encodings of the same records.
const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

const SINGLE_NODE: SessionRecord = {
  clientId: 'fixture-client',
  protocolVersion: 5,
  expiryInterval: 3600,
  subscriptions: [
    ['sensors/+/temp', { qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 0, subscriptionId: 7 }],
    ['alerts/#', { qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionId: 7 }],
    ['cmd/fixture-client', { qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 2 }],
  ],
  cursor: 41,
  inflight: [
    [38, 1, 1, 1],
    [39, 2, 2, 2],
    [40, 3, 2, 1],
  ],
  awaitingRel: [42],
  disconnectedAt: 1796173798406,
};

const OWNED: SessionRecord = {
  clientId: 'fixture-owned',
  protocolVersion: 5,
  expiryInterval: 600,
  subscriptions: [['cmd/fixture-owned/#', { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }]],
  cursor: 0,
  inflight: [],
  awaitingRel: [],
  disconnectedAt: null,
  owner: 'gw-a',
  incarnation: '36a60a61-6103-459b-968e-4021198f5e37',
  epoch: 1,
  claimedAt: 1796173822244,
  ack: 1,
  will: { message: 'KHN0YXR1cy9maXh0dXJlLW93bmVkDm9mZmxpbmUCARpmaXh0dXJlLW93bmVkoOTrxMZoAgAAAhR0ZXh0L3BsYWluAAAA', delaySeconds: 30 },
};

const LEASE = { incarnation: '36a60a61-6103-459b-968e-4021198f5e37', startedAt: 1796173820738, until: 1796173831170 };

describe('session records', () => {
  it('decodes the version 1 JSON records the gateway wrote before versioning', () => {
    assert.deepEqual(sessionCodec.decode(fixture('session.v1.json'), 'fixture-client'), SINGLE_NODE);
    const owned = sessionCodec.decode(fixture('session-owned.v1.json'), 'fixture-owned');
    assert.deepEqual(owned, OWNED);
    const will = decodeMessage(Buffer.from(owned.will!.message, 'base64'));
    assert.equal(will.topic, 'status/fixture-owned');
    assert.equal(will.properties?.contentType, 'text/plain');
  });

  it('decodes the committed version 2 encodings to the same records', () => {
    assert.deepEqual(sessionCodec.decode(fixture('session.v2.avro'), 'fixture-client'), SINGLE_NODE);
    assert.deepEqual(sessionCodec.decode(fixture('session-owned.v2.avro'), 'fixture-owned'), OWNED);
    assert.deepEqual(sessionCodec.encode(SINGLE_NODE), fixture('session.v2.avro'), 'the encoding of version 2 has not changed');
  });

  it('writes version 2 (framed Avro) and reads back equal records, offline and released ones included', () => {
    const offline: SessionRecord = { ...OWNED, owner: null, disconnectedAt: 1796173830000, willAt: 1796173860000 };
    const released: SessionRecord = { ...SINGLE_NODE, owner: null, epoch: 3, claimedAt: 5 };
    for (const record of [SINGLE_NODE, OWNED, offline, released]) {
      const value = sessionCodec.encode(record);
      assert.equal(value[0], RECORD_MAGIC);
      assert.equal(value[1], 2);
      assert.deepEqual(sessionCodec.decode(value), record);
    }
  });

  it('rejects what the schema cannot say: ranges and the key', () => {
    const bad = (patch: Partial<SessionRecord>): Buffer => sessionCodec.encode({ ...SINGLE_NODE, ...patch });
    assert.throws(() => sessionCodec.decode(bad({ subscriptions: [['a', { qos: 3 as 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }]] })), /qos of a 3 outside 0..2/);
    assert.throws(() => sessionCodec.decode(bad({ inflight: [[1, 0, 1, 1]] })), /packet id 0 outside 1..65535/);
    assert.throws(() => sessionCodec.decode(bad({ inflight: [[1, 9, 1, 3 as 1]] })), /phase 3/);
    assert.throws(() => sessionCodec.decode(bad({ protocolVersion: 6 })), /protocolVersion 6/);
    assert.throws(() => sessionCodec.decode(bad({}), 'someone-else'), /stored under key "someone-else"/);
    const json = JSON.parse(fixture('session.v1.json').toString()) as Record<string, unknown>;
    const v1 = (patch: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ ...json, ...patch }));
    assert.throws(() => sessionCodec.decode(v1({ cursor: 'x' })), /invalid io.tributary.v2.Session: field cursor/);
    assert.throws(() => sessionCodec.decode(v1({ v: 2 })), /field v is 2/);
    assert.throws(() => sessionCodec.decode(v1({ awaitingRel: [70000] })), /awaitingRel packet id 70000/);
  });

  it('rejects corrupt values with a RecordError, never a cast', () => {
    const good = sessionCodec.encode(SINGLE_NODE);
    for (const value of [good.subarray(0, good.length - 3), Buffer.concat([good, Buffer.from([1])]), framed(9, good.subarray(2)), Buffer.from([0x00, 2, 1]), Buffer.from('{"v":1,'), Buffer.alloc(0)]) {
      assert.throws(() => sessionCodec.decode(value), RecordError, value.toString('hex'));
    }
    assert.throws(() => sessionCodec.decode(framed(9, good.subarray(2))), (err: unknown) => err instanceof RecordError && err.code === 'RECORD_INVALID' && /unknown version 9/.test(err.message));
  });
});

describe('gateway leases', () => {
  it('decodes the version 1 JSON lease and the version 2 encoding, and writes version 2', () => {
    assert.deepEqual(gatewayLeaseCodec.decode(fixture('gateway-lease.v1.json')), LEASE);
    assert.deepEqual(gatewayLeaseCodec.decode(fixture('gateway-lease.v2.avro')), LEASE);
    assert.deepEqual(gatewayLeaseCodec.encode(LEASE), fixture('gateway-lease.v2.avro'));
    assert.throws(() => gatewayLeaseCodec.decode(Buffer.from('{"incarnation":"x","startedAt":1}')), /field until/);
  });
});

describe('the record reader', () => {
  it('reports an undecodable record with its table, key and offset, counts it and skips it', () => {
    const warnings: [Record<string, unknown>, string][] = [];
    const reader = new RecordReader(sessionCodec, 'sessions', { warn: (obj: Record<string, unknown>, msg: string) => warnings.push([obj, msg]) } as never);
    assert.deepEqual(reader.read('fixture-client', fixture('session.v1.json'), 3), SINGLE_NODE);
    assert.equal(reader.read('c1', Buffer.from('{"v":1,"clientId":'), 17), undefined);
    assert.equal(reader.invalid, 1);
    assert.equal(warnings.length, 1);
    const [report, msg] = warnings[0]!;
    assert.equal(msg, 'undecodable record skipped');
    assert.equal(report.table, 'sessions');
    assert.equal(report.key, 'c1');
    assert.equal(report.offset, 17);
    assert.equal(report.schema, 'io.tributary.v2.Session');
    assert.match(String(report.err), /malformed JSON/);
  });

  it('reads retained and delayed values as io.tributary.v1.Message and rejects a QoS outside 0..2', () => {
    const msg = { ...newMessage('a/b', Buffer.from('x'), 1, true, 'c'), timestamp: 5 };
    assert.deepEqual(messageCodec.decode(encodeMessage(msg)), msg);
    const bad = encodeMessage({ ...msg, qos: 3 as 1 });
    assert.throws(() => messageCodec.decode(bad), /qos 3/);
  });
});
