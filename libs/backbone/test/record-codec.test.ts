import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ProducerRecord } from '../src';
import { decodeRecord, encodeRecord, maxEncodedSize, newFrame, parseFrame, PARSE_OK } from '../src/embedded/record-codec';

/** Encodes `records` one after another into one buffer and decodes them back. */
function roundTrip(records: ProducerRecord[]): ReturnType<typeof decodeRecord>[] {
  const buf = Buffer.alloc(records.reduce((n, r) => n + maxEncodedSize(r), 0));
  let end = 0;
  records.forEach((r, i) => (end = encodeRecord(buf, end, 100 + i, 1_700_000_000_000 + i, r, 0)));
  const out: ReturnType<typeof decodeRecord>[] = [];
  const frame = newFrame();
  for (let pos = 0; pos < end; pos = frame.end) {
    assert.equal(parseFrame(buf, pos, end, frame), PARSE_OK);
    out.push(decodeRecord(buf, frame, 't'));
  }
  return out;
}

it('records round-trip with keys and header names and values in and beyond ASCII, shared frozen headers and mutable ones', () => {
  const schema = Object.freeze({ 'tributary-schema': 'io.tributary.v1.Message' });
  const retained = Object.freeze({ 'tributary-schema': 'io.tributary.v1.Message', 'mqtt-retain': 'true' });
  const mutable: Record<string, string> = { a: '1' };
  const long = 'x'.repeat(200);
  const records: ProducerRecord[] = [
    { key: 'sensors/1', value: Buffer.from('v1'), headers: schema },
    { key: 'grüße/ü', value: Buffer.from('v2'), headers: retained },
    { key: null, value: null, headers: schema },
    { key: long, value: Buffer.alloc(0), headers: { 'ключ': 'значение', [long]: long } },
    { key: 'k', value: Buffer.from('v4'), headers: mutable },
    { key: 'k', value: Buffer.from('v5') },
  ];
  const got = roundTrip(records);
  mutable.a = '2'; // encoded already: the change must not show, and a later record must see it
  const later = roundTrip([{ key: 'k', value: null, headers: mutable }, { key: 'k2', value: null, headers: schema }]);
  assert.deepEqual(
    got.map((r) => [r.offset, r.key, r.value?.toString() ?? null, r.headers]),
    [
      [100, 'sensors/1', 'v1', { ...schema }],
      [101, 'grüße/ü', 'v2', { ...retained }],
      [102, null, null, { ...schema }],
      [103, long, '', { 'ключ': 'значение', [long]: long }],
      [104, 'k', 'v4', { a: '1' }],
      [105, 'k', 'v5', {}],
    ],
  );
  assert.deepEqual(later.map((r) => r.headers), [{ a: '2' }, { ...schema }]);
});
