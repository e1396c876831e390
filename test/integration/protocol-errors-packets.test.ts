// Malformed packets and protocol errors after CONNECT: each closes only the sender's connection
// (5.0: DISCONNECT 0x81 or 0x82), and nothing of a bad PUBLISH reaches anyone. Setup and
// bystanders: test/helpers/protocol-errors.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VERSIONS, brokerWithBystanders, cid, expectClosed, gen, rawPublish, str16 } from '../helpers/protocol-errors';
import { RawClient } from '../helpers/raw';

const setup = brokerWithBystanders();

describe('malformed packets close the connection (5.0: DISCONNECT 0x81)', () => {
  const cases: [string, (v: 4 | 5) => Buffer][] = [
    [
      'SUBSCRIBE with reserved header flags 0000',
      (v) => {
        const b = gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/b', qos: 0 }] }, v);
        b[0] = 0x80;
        return b;
      },
    ],
    ['PUBREL with reserved header flags 0000', () => Buffer.from([0x60, 0x02, 0x00, 0x01])],
    ['UNSUBSCRIBE with reserved header flags 0000', (v) => {
      const b = gen({ cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['a/b'] }, v);
      b[0] = 0xa0;
      return b;
    }],
    [
      'PUBLISH with QoS 3',
      (v) => {
        const b = rawPublish(Buffer.from('a/b'), v);
        b[0] = 0x36;
        return b;
      },
    ],
    ['remaining length of more than 4 bytes', () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00])],
    [
      'remaining length shorter than the topic it frames',
      (v) => {
        const b = rawPublish(Buffer.from('a/long/topic'), v);
        b[1] = 4; // covers the length prefix and two bytes of a 12-byte topic
        return b.subarray(0, 2 + 4);
      },
    ],
    ['invalid UTF-8 (0xC3 0x28) in a PUBLISH topic', (v) => rawPublish(Buffer.from([0x61, 0x2f, 0xc3, 0x28]), v)],
    ['U+0000 in a PUBLISH topic', (v) => rawPublish(Buffer.from([0x61, 0x2f, 0x00, 0x62]), v)],
    [
      'invalid UTF-8 in a SUBSCRIBE topic filter',
      (v) => {
        const b = gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/\u00e9', qos: 0 }] }, v);
        const i = b.indexOf(Buffer.from('a/\u00e9'));
        b[i + 3] = 0x28; // 0xC3 0xA9 → 0xC3 0x28
        return b;
      },
    ],
    ['QoS 1 PUBLISH with packet identifier 0', (v) => gen({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, messageId: 0, retain: false, dup: false }, v)],
    ['SUBSCRIBE with packet identifier 0', (v) => gen({ cmd: 'subscribe', messageId: 0, subscriptions: [{ topic: 'a/b', qos: 0 }] }, v)],
    ['UNSUBSCRIBE with packet identifier 0', (v) => gen({ cmd: 'unsubscribe', messageId: 0, unsubscriptions: ['a/b'] }, v)],
    ['PUBACK shorter than its packet identifier', () => Buffer.from([0x40, 0x01, 0x00])],
  ];
  for (const [name, bytes] of cases) {
    for (const v of VERSIONS) {
      test(`${name} (${v === 5 ? '5.0' : '3.1.1'})`, async () => {
        const c = await RawClient.connected(setup.broker.mqttPort, cid('malformed'), v);
        c.sendBytes(bytes(v));
        await expectClosed(c, v, 0x81);
        await setup.bystandersWork();
      });
    }
  }
});

describe('protocol errors in a PUBLISH close the connection (5.0: DISCONNECT 0x82, not 0x81)', () => {
  // Each goes to the bystanders' topic: none may reach them.
  const cases: [string, (v: 4 | 5) => Buffer, (4 | 5)[]][] = [
    [
      'QoS 0 PUBLISH with DUP set [MQTT-3.3.1-2]',
      (v) => {
        const b = rawPublish(Buffer.from('bystander/t'), v);
        b[0] = 0x38;
        return b;
      },
      [4, 5],
    ],
    ['an empty topic name without a Topic Alias', (v) => rawPublish(Buffer.alloc(0), v), [4, 5]],
    // Property Length 2: Payload Format Indicator (0x01) with the undefined value 2.
    ['a Payload Format Indicator of 2', (v) => rawPublish(Buffer.from('bystander/t'), v, Buffer.from('x'), Buffer.from([0x02, 0x01, 0x02])), [5]],
    ['a Response Topic with "+" [MQTT-3.3.2-14]', () => gen({ cmd: 'publish', topic: 'bystander/t', payload: Buffer.from('req'), qos: 1, messageId: 1, retain: false, dup: false, properties: { responseTopic: 'resp/+/x' } }, 5), [5]],
    ['a Response Topic with "#" [MQTT-3.3.2-14]', () => gen({ cmd: 'publish', topic: 'bystander/t', payload: Buffer.from('req'), qos: 0, retain: false, dup: false, properties: { responseTopic: 'resp/#' } }, 5), [5]],
  ];
  for (const [name, bytes, versions] of cases) {
    for (const v of versions) {
      test(`${name} (${v === 5 ? '5.0' : '3.1.1'})`, async () => {
        const c = await RawClient.connected(setup.broker.mqttPort, cid('protocol'), v);
        const received = setup.inbox.messages.length;
        c.sendBytes(bytes(v));
        await expectClosed(c, v, 0x82);
        assert.ok(!c.packets.some((p) => p.cmd === 'puback'), 'the PUBLISH was acknowledged');
        await setup.bystandersWork();
        assert.ok(
          setup.inbox.messages.slice(received).every((m) => /^m\d+$/.test(m.payload.toString())),
          'the bad PUBLISH was delivered',
        );
      });
    }
  }
});

describe('malformed 5.0 properties close the connection with DISCONNECT 0x81', () => {
  // A PUBLISH to the bystanders' topic: a malformed one must never reach them.
  const topic = str16('bystander/t');
  const cases: [string, Buffer][] = [
    // Content Type whose length runs past the end of the packet.
    ['a property value cut short by the end of the packet', Buffer.concat([topic, Buffer.from([0x03, 0x03, 0x00, 0x0a])])],
    // Content Type "hi" read from beyond the 3-byte Property Length (from the payload).
    ['a property value running past the Property Length', Buffer.concat([topic, Buffer.from([0x03, 0x03, 0x00, 0x02]), Buffer.from('hi!')])],
    // Topic Alias (two bytes) with only one byte left.
    ['a two-byte property with one byte left', Buffer.concat([topic, Buffer.from([0x02, 0x23, 0x00])])],
    // A property identifier that does not exist.
    ['an unknown property identifier', Buffer.concat([topic, Buffer.from([0x02, 0x7f, 0x00]), Buffer.from('x')])],
  ];
  for (const [name, body] of cases) {
    test(`PUBLISH with ${name}`, async () => {
      const c = await RawClient.connected(setup.broker.mqttPort, cid('props'), 5);
      const received = setup.inbox.messages.length;
      c.sendBytes(Buffer.concat([Buffer.from([0x30, body.length]), body]));
      await expectClosed(c, 5, 0x81);
      await setup.bystandersWork();
      assert.ok(
        setup.inbox.messages.slice(received).every((m) => /^m\d+$/.test(m.payload.toString())),
        'the malformed PUBLISH was delivered',
      );
    });
  }

  test('DISCONNECT with only a reason code (Property Length omitted) is a normal disconnect', async () => {
    const c = await RawClient.connected(setup.broker.mqttPort, cid('disc'), 5, { will: { topic: 'bystander/t', payload: Buffer.from('will: must not be sent'), qos: 0, retain: false } });
    const received = setup.inbox.messages.length;
    c.sendBytes(Buffer.from([0xe0, 0x01, 0x00]));
    await c.waitClosed(5000);
    assert.equal(c.disconnectReason(), undefined, 'a valid DISCONNECT was answered with a DISCONNECT');
    await setup.bystandersWork();
    assert.ok(!setup.inbox.messages.slice(received).some((m) => m.payload.toString().startsWith('will')), 'the will was published after a normal DISCONNECT');
  });
});
