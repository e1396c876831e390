import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { decodeRequest, encodeRequest } from '../src/buffer';
import { jsonEncode } from '@tributary/rulesql';

describe('sink buffer records', () => {
  it('a request round-trips, bytes as bytes and text as text', () => {
    const bytes = Buffer.from([0xff, 0x00, 0x80]);
    const back = decodeRequest(encodeRequest({ payload: bytes, topic: 't/1', n: 2, nested: { b: Buffer.from('hi') }, list: [1, 'x'] }));
    assert.ok(Buffer.isBuffer(back.payload));
    assert.deepEqual(back.payload, bytes);
    assert.deepEqual((back.nested as { b: Buffer }).b, Buffer.from('hi'));
    assert.equal(back.topic, 't/1');
    assert.deepEqual(back.list, [1, 'x']);
  });

  it('JSON of a value shows Buffers as their text and undefined as null', () => {
    assert.equal(jsonEncode({ a: Buffer.from('hé'), b: undefined }), '{"a":"hé","b":null}');
  });
});
