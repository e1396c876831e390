import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mqttPacket from 'mqtt-packet';
import { createParser, generatePacket, Packet } from '../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const MqttPacket = require('mqtt-packet/packet') as new () => object;

/** The fields a packet is compared on (mqtt-packet's Packet, plain). */
function plain(p: Packet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = Buffer.isBuffer(v) ? v.toString('hex') : v;
  return out;
}

/** Parses `bytes` cut into chunks at `cuts`, with the parser set to `version`. */
function parseChunks(bytes: Buffer, cuts: number[], version: number): { packets: Packet[]; errors: Error[]; buffered: number[] } {
  const parser = createParser();
  parser.settings = { protocolVersion: version };
  const packets: Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (e) => errors.push(e));
  const buffered: number[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    buffered.push(parser.parse(bytes.subarray(at, cut)));
    at = cut;
  }
  return { packets, errors, buffered };
}

/** What plain mqtt-packet makes of the same bytes in one piece. */
function reference(bytes: Buffer, version: number): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: Packet[] = [];
  parser.on('packet', (p) => packets.push(p));
  parser.on('error', (e) => assert.fail(e));
  parser.parse(bytes);
  return packets;
}

function stream(version: number): Buffer {
  const packets: mqttPacket.Packet[] = [
    { cmd: 'publish', topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false },
    { cmd: 'publish', topic: 'sensors/1/temp', payload: Buffer.alloc(300, 7), qos: 1, messageId: 513, retain: true, dup: true },
    { cmd: 'publish', topic: 'x', payload: Buffer.alloc(0), qos: 2, messageId: 65535, retain: false, dup: false },
    { cmd: 'publish', topic: '', payload: Buffer.from('empty topic'), qos: 0, retain: false, dup: false },
    { cmd: 'publish', topic: 'grüße/ü', payload: Buffer.from('non-ASCII topic'), qos: 1, messageId: 2, retain: false, dup: false },
    { cmd: 'pingreq' },
    { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'a/#', qos: 1 }] },
    { cmd: 'publish', topic: 'big', payload: Buffer.alloc(70_000, 1), qos: 0, retain: false, dup: false },
    { cmd: 'puback', messageId: 9 },
    { cmd: 'pubrec', messageId: 10 },
    { cmd: 'pubrel', messageId: 11 },
    { cmd: 'pubcomp', messageId: 65535 },
    { cmd: 'puback', messageId: 0 },
  ];
  if (version === 5) {
    packets.push(
      { cmd: 'puback', messageId: 12, reasonCode: 0x10 },
      { cmd: 'pubrec', messageId: 13, reasonCode: 0x80, properties: { reasonString: 'no' } },
      { cmd: 'publish', topic: 'p', payload: Buffer.from('props'), qos: 1, messageId: 3, retain: false, dup: false, properties: { contentType: 'text/plain', userProperties: { k: 'v' } } },
      { cmd: 'publish', topic: 'q', payload: Buffer.from('after props'), qos: 0, retain: false, dup: false },
    );
  }
  return Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: version })));
}

describe('the framing parser', () => {
  for (const version of [4, 5]) {
    it(`v${version}: gives mqtt-packet's packets for a stream cut at every byte, in two and in many pieces`, () => {
      const bytes = stream(version);
      const want = reference(bytes, version).map(plain);
      assert.equal(want.length, version === 5 ? 17 : 13);
      const whole = parseChunks(bytes, [], version);
      assert.deepEqual(whole.packets.map(plain), want);
      assert.deepEqual(whole.errors, []);
      // The common PUBLISH and the bare acknowledgements come from the fast path, not mqtt-packet.
      const fast = whole.packets.filter((p) => !(p instanceof MqttPacket)).map((p) => `${p.cmd}:${(p as { messageId?: number }).messageId ?? '-'}`);
      // (Not the non-ASCII topic, PINGREQ, SUBSCRIBE, an id of 0, other reason codes or properties;
      // mqtt-packet writes 5.0's acknowledgements with Reason Code 0 and an empty property set.)
      const publishes = ['publish:-', 'publish:513', 'publish:65535', 'publish:-', 'publish:-'];
      assert.deepEqual(fast, [...publishes, 'puback:9', 'pubrec:10', 'pubrel:11', 'pubcomp:65535', ...(version === 5 ? ['publish:-'] : [])]);
      // Every cut through the first 700 bytes (headers, topics, ids, properties, payloads), and every 97th after.
      for (let cut = 1; cut < bytes.length; cut += cut < 700 ? 1 : 97) {
        const got = parseChunks(bytes, [cut], version);
        assert.deepEqual(got.packets.map(plain), want, `cut at ${cut}`);
      }
      const tiny = parseChunks(bytes, Array.from({ length: Math.floor(bytes.length / 3) }, (_, i) => (i + 1) * 3), version);
      assert.deepEqual(tiny.packets.map(plain), want);
      assert.deepEqual(tiny.errors, []);
    });
  }

  it('pause() stops after the packet being handled; the rest and later chunks wait as bytes until resume()', () => {
    const bytes = stream(5);
    const want = reference(bytes, 5).map(plain);
    const parser = createParser();
    parser.settings = { protocolVersion: 5 };
    const got: Packet[] = [];
    // Pause inside every second packet's handler, as a channel does when flow control engages.
    parser.on('packet', (p) => {
      got.push(p);
      if (got.length % 2 === 1) parser.pause();
    });
    const cut = 500;
    assert.equal(parser.parse(bytes.subarray(0, cut)), 0);
    assert.equal(got.length, 1, 'stopped after the first packet');
    assert.ok(parser.paused);
    assert.equal(parser.parse(bytes.subarray(cut)), 0, 'a chunk while paused waits too');
    assert.equal(got.length, 1);
    const firstPacket = mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false }, { protocolVersion: 5 });
    assert.equal(parser.unparsedBytes, bytes.length - firstPacket.length);
    let rounds = 0;
    while (parser.paused && rounds++ < 100) parser.resume();
    assert.deepEqual(got.map(plain), want, 'every packet, in order');
    assert.equal(parser.unparsedBytes, 0);
  });

  it('reports the bytes of an incomplete packet as buffered, growing until it completes', () => {
    const big = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(10_000), qos: 0, retain: false, dup: false });
    const { packets, buffered } = parseChunks(big, [1, 3000, 6000, 9000], 4);
    assert.deepEqual(buffered, [1, 3000, 6000, 9000, 0]);
    assert.equal(packets.length, 1);
    assert.equal((packets[0] as mqttPacket.IPublishPacket).payload.length, 10_000);
  });

  it('keeps a copy of an incomplete packet, not the chunk it came in', () => {
    const a = mqttPacket.generate({ cmd: 'publish', topic: 't', payload: Buffer.from('abc'), qos: 0, retain: false, dup: false });
    const chunk = Buffer.from(a);
    const parser = createParser();
    const packets: Packet[] = [];
    parser.on('packet', (p) => packets.push(p));
    parser.parse(chunk.subarray(0, 4));
    chunk.fill(0); // the chunk's memory is not the parser's to keep
    parser.parse(a.subarray(4));
    assert.equal((packets[0] as mqttPacket.IPublishPacket).payload.toString(), 'abc');
  });

  it('refuses a Remaining Length of more than four bytes, and a PUBLISH with QoS 3, as mqtt-packet does', () => {
    const bad = parseChunks(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), [2], 4);
    assert.equal(bad.errors.length, 1);
    assert.match(bad.errors[0]!.message, /variable byte integer/);
    const qos3 = parseChunks(Buffer.from([0x36, 0x03, 0x00, 0x01, 0x61]), [], 4);
    assert.equal(qos3.errors.length, 1);
    assert.deepEqual(qos3.packets, []);
  });

  it('after an error, discards the rest of that chunk and parses the next one', () => {
    const good = generatePacket({ cmd: 'pingreq' });
    const parser = createParser();
    const packets: Packet[] = [];
    const errors: Error[] = [];
    parser.on('packet', (p) => packets.push(p));
    parser.on('error', (e) => errors.push(e));
    // A QoS 1 PUBLISH with packet identifier 0, then a PINGREQ in the same chunk.
    const zeroId = Buffer.from([0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00]);
    parser.parse(Buffer.concat([zeroId, good]));
    assert.equal(errors.length, 1);
    assert.equal(packets.length, 0);
    parser.parse(good);
    assert.deepEqual(packets.map((p: Packet) => p.cmd), ['pingreq']);
  });
});
