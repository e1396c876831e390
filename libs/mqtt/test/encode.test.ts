import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as mp from 'mqtt-packet';
import { encodeAck, encodePublish } from '../src';

it('hand-written PUBLISH and ack encoders match mqtt-packet byte for byte', () => {
  for (const v5 of [false, true]) {
    for (const qos of [0, 1, 2] as const) {
      for (const size of [0, 5, 200, 20_000, 3_000_000]) {
        const topic = size % 2 ? 'a/b/ü/c' : 'sensors/room-1/temperature';
        const payload = Buffer.alloc(size, 7);
        const want = mp.generate({ cmd: 'publish', topic, payload, qos, retain: qos === 1, dup: qos === 2, messageId: qos ? 513 : undefined }, { protocolVersion: v5 ? 5 : 4 });
        const got = encodePublish(topic, Buffer.byteLength(topic), payload, qos, qos === 1, qos === 2, 513, v5);
        assert.deepEqual(got, want, `v5=${v5} qos=${qos} size=${size}`);
      }
    }
  }
  for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
    assert.deepEqual(encodeAck(cmd, 65535), mp.generate({ cmd, messageId: 65535 }, { protocolVersion: 4 }));
  }
});
