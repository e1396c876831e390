// Bad input from one client closes only that client's connection. After every case, two other
// clients that connected before it (3.1.1 publisher, 5.0 subscriber) must still exchange a QoS 1
// message. One broker for the whole file, with small limits so they can be reached cheaply.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { RawClient } from '../helpers/raw';

const MAX_PACKET_SIZE = 1024;
const MAX_INFLIGHT = 2;

let broker: BrokerProcess;
let pub: MqttClient;
let sub: MqttClient;
let inbox: Inbox;
let seq = 0;

before(async () => {
  broker = await startBroker({
    env: {
      TRIBUTARY_MQTT__MAX_PACKET_SIZE: String(MAX_PACKET_SIZE),
      TRIBUTARY_MQTT__IDLE_TIMEOUT: '1s',
      TRIBUTARY_MQTT__MAX_INFLIGHT: String(MAX_INFLIGHT),
    },
  });
  pub = await connect(broker.url, { protocolVersion: 4, clientId: 'bystander-pub' });
  sub = await connect(broker.url, { protocolVersion: 5, clientId: 'bystander-sub' });
  inbox = new Inbox(sub);
  await sub.subscribeAsync('bystander/t', { qos: 1 });
});

after(async () => {
  await end(pub, sub);
  await broker?.stop();
});

/** The clients connected before the bad one still publish and receive. */
async function bystandersWork(): Promise<void> {
  assert.ok(pub.connected && sub.connected, 'a bystander connection was closed');
  const n = ++seq;
  const before = inbox.messages.length;
  await pub.publishAsync('bystander/t', `m${n}`, { qos: 1 });
  const msgs = await inbox.waitFor(before + 1, 5000);
  assert.equal(msgs[before]!.payload.toString(), `m${n}`);
  assert.equal(broker.proc.exitCode, null, 'broker process exited');
  // Bad input is the client's problem, never an internal error of the broker.
  const errors = broker.logs.slice(logsChecked).filter((l) => typeof l.level === 'number' && l.level >= 50);
  logsChecked = broker.logs.length;
  assert.deepEqual(errors, [], 'the broker logged errors');
}
let logsChecked = 0;

/** The broker closed `c`; a 5.0 client got DISCONNECT `reason` first, a 3.x client none. */
async function expectClosed(c: RawClient, version: 4 | 5, reason: number): Promise<void> {
  await c.waitClosed(5000);
  if (version === 5) assert.equal(c.disconnectReason(), reason, `DISCONNECT reason 0x${reason.toString(16)}`);
  else assert.equal(c.disconnectReason(), undefined, 'a 3.1.1 client gets no DISCONNECT');
}

function str16(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** A QoS 0 PUBLISH with the topic (and 5.0 properties, Property Length first) given as raw bytes (remaining length < 128). */
function rawPublish(topic: Buffer, version: 4 | 5, payload = Buffer.from('x'), properties = Buffer.from([0])): Buffer {
  const body = Buffer.concat([str16(topic), version === 5 ? properties : Buffer.alloc(0), payload]);
  assert.ok(body.length < 128);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

function gen(packet: mp.Packet, version: number): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('mqtt-packet') as typeof mp).generate(packet, { protocolVersion: version });
}

const VERSIONS = [4, 5] as const;
let idn = 0;
const cid = (what: string): string => `pe-${what}-${++idn}`;

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
        const c = await RawClient.connected(broker.mqttPort, cid('malformed'), v);
        c.sendBytes(bytes(v));
        await expectClosed(c, v, 0x81);
        await bystandersWork();
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
        const c = await RawClient.connected(broker.mqttPort, cid('protocol'), v);
        const received = inbox.messages.length;
        c.sendBytes(bytes(v));
        await expectClosed(c, v, 0x82);
        assert.ok(!c.packets.some((p) => p.cmd === 'puback'), 'the PUBLISH was acknowledged');
        await bystandersWork();
        assert.ok(
          inbox.messages.slice(received).every((m) => /^m\d+$/.test(m.payload.toString())),
          'the bad PUBLISH was delivered',
        );
      });
    }
  }
});

describe('protocol errors in a 5.0 will get CONNACK 0x82', () => {
  const will = (properties: Record<string, unknown>): mp.IConnectPacket['will'] => ({ topic: 'bystander/t', payload: Buffer.from('will: must not be sent'), qos: 0, retain: false, properties });
  const cases: [string, () => Buffer][] = [
    ['a will Response Topic with "+"', () => gen({ cmd: 'connect', clientId: cid('willrt'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ responseTopic: 'resp/+' }) }, 5)],
    ['a will Response Topic with "#"', () => gen({ cmd: 'connect', clientId: cid('willrt'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ responseTopic: '#' }) }, 5)],
    [
      'a will Payload Format Indicator of 2',
      () => {
        const b = gen({ cmd: 'connect', clientId: cid('willpfi'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ payloadFormatIndicator: true }) }, 5);
        // Will Property Length 2, then Payload Format Indicator (0x01) = 1: make the value 2.
        const at = b.indexOf(Buffer.from([0x02, 0x01, 0x01]));
        assert.ok(at > 0);
        b[at + 2] = 2;
        return b;
      },
    ],
  ];
  for (const [name, bytes] of cases) {
    test(name, async () => {
      const c = await RawClient.open(broker.mqttPort, 5);
      const received = inbox.messages.length;
      c.sendBytes(bytes());
      const connack = (await c.next('connack')) as mp.IConnackPacket;
      assert.equal(connack.reasonCode, 0x82);
      await c.waitClosed(5000);
      await bystandersWork();
      assert.ok(!inbox.messages.slice(received).some((m) => m.payload.toString().startsWith('will')), 'the refused will was published');
    });
  }
});

describe('a 5.0 CONNECT whose one-byte request flag is neither 0 nor 1 gets CONNACK 0x82', () => {
  const flags: [string, keyof NonNullable<mp.IConnectPacket['properties']>, number][] = [
    ['Request Problem Information', 'requestProblemInformation', 0x17],
    ['Request Response Information', 'requestResponseInformation', 0x19],
  ];
  for (const [name, prop, id] of flags) {
    test(`${name} = 2`, async () => {
      const b = gen({ cmd: 'connect', clientId: cid('flag'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, properties: { [prop]: true } }, 5);
      // Property Length 2, then the identifier and the value 1: make the value 2.
      const at = b.indexOf(Buffer.from([0x02, id, 0x01]));
      assert.ok(at > 0);
      b[at + 2] = 2;
      const c = await RawClient.open(broker.mqttPort, 5);
      c.sendBytes(b);
      const connack = (await c.next('connack')) as mp.IConnackPacket;
      assert.equal(connack.reasonCode, 0x82);
      await c.waitClosed(5000);
    });
    test(`${name} = 1 is accepted`, async () => {
      const c = await RawClient.connected(broker.mqttPort, cid('flag'), 5, { properties: { [prop]: true } });
      assert.equal((c.packets[0] as mp.IConnackPacket).reasonCode, 0);
      c.destroy();
    });
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
      const c = await RawClient.connected(broker.mqttPort, cid('props'), 5);
      const received = inbox.messages.length;
      c.sendBytes(Buffer.concat([Buffer.from([0x30, body.length]), body]));
      await expectClosed(c, 5, 0x81);
      await bystandersWork();
      assert.ok(
        inbox.messages.slice(received).every((m) => /^m\d+$/.test(m.payload.toString())),
        'the malformed PUBLISH was delivered',
      );
    });
  }

  test('DISCONNECT with only a reason code (Property Length omitted) is a normal disconnect', async () => {
    const c = await RawClient.connected(broker.mqttPort, cid('disc'), 5, { will: { topic: 'bystander/t', payload: Buffer.from('will: must not be sent'), qos: 0, retain: false } });
    const received = inbox.messages.length;
    c.sendBytes(Buffer.from([0xe0, 0x01, 0x00]));
    await c.waitClosed(5000);
    assert.equal(c.disconnectReason(), undefined, 'a valid DISCONNECT was answered with a DISCONNECT');
    await bystandersWork();
    assert.ok(!inbox.messages.slice(received).some((m) => m.payload.toString().startsWith('will')), 'the will was published after a normal DISCONNECT');
  });
});

describe('limits and protocol violations', () => {
  for (const v of VERSIONS) {
    const name = v === 5 ? '5.0' : '3.1.1';

    test(`a PUBLISH over max_packet_size closes the connection (${name}: 0x95), one under it is accepted`, async () => {
      const c = await RawClient.connected(broker.mqttPort, cid('big'), v);
      c.send({ cmd: 'publish', topic: 'big/ok', payload: Buffer.alloc(MAX_PACKET_SIZE - 100, 1), qos: 1, messageId: 7, retain: false, dup: false });
      await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 7);
      c.send({ cmd: 'publish', topic: 'big/no', payload: Buffer.alloc(4096, 2), qos: 1, messageId: 8, retain: false, dup: false });
      await expectClosed(c, v, 0x95);
      assert.ok(!c.packets.some((p) => p.cmd === 'puback' && (p as mp.IPubackPacket).messageId === 8), 'the oversized PUBLISH was acknowledged');
      await bystandersWork();
    });

    for (const [what, bytes] of [
      ['SUBSCRIBE', [0x82, 0x02, 0x00, 0x01]],
      ['UNSUBSCRIBE', [0xa2, 0x02, 0x00, 0x01]],
    ] as const) {
      test(`a ${what} without any topic filter closes the connection (${name}: 0x82)`, async () => {
        const c = await RawClient.connected(broker.mqttPort, cid('nofilter'), v);
        // 5.0 needs the (empty) property length after the packet id.
        c.sendBytes(Buffer.from(v === 5 ? [bytes[0], 0x03, 0x00, 0x01, 0x00] : bytes));
        await expectClosed(c, v, 0x82);
        assert.ok(!c.packets.some((p) => p.cmd === 'suback' || p.cmd === 'unsuback'), `${what} without filters was acknowledged`);
        await bystandersWork();
      });
    }

    test(`a second CONNECT closes the connection (${name}: 0x82)`, async () => {
      const c = await RawClient.connected(broker.mqttPort, cid('twice'), v);
      c.send({ cmd: 'connect', clientId: cid('twice-again'), protocolVersion: v, protocolId: 'MQTT', clean: true, keepalive: 60 });
      await expectClosed(c, v, 0x82);
      assert.equal(c.packets.filter((p) => p.cmd === 'connack').length, 1);
      await bystandersWork();
    });

    for (const topic of ['wild/+', 'wild/#', '+', 'a/+/b']) {
      test(`a PUBLISH to the wildcard topic "${topic}" closes the connection (${name}: 0x90)`, async () => {
        const c = await RawClient.connected(broker.mqttPort, cid('wild'), v);
        c.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 3, retain: false, dup: false });
        await expectClosed(c, v, 0x90);
        assert.ok(!c.packets.some((p) => p.cmd === 'puback'), 'a wildcard PUBLISH was acknowledged');
        await bystandersWork();
      });
    }

    test(`invalid topic filters get a SUBACK failure per filter, valid ones in the same SUBSCRIBE are granted (${name})`, async () => {
      const c = await RawClient.connected(broker.mqttPort, cid('filters'), v);
      const subscriptions = [
        { topic: 'filt/+/x', qos: 1 as const },
        { topic: 'filt/#/b', qos: 1 as const },
        { topic: 'filt+', qos: 0 as const },
        { topic: 'filt/ok/#', qos: 2 as const },
        { topic: '', qos: 0 as const },
        { topic: 'filt/a#', qos: 0 as const },
        { topic: 'filt/q', qos: 0 as const },
      ];
      c.send({ cmd: 'subscribe', messageId: 11, subscriptions });
      const suback = (await c.next('suback')) as mp.ISubackPacket;
      const bad = v === 5 ? 0x8f : 0x80;
      assert.deepEqual(suback.granted, [1, bad, bad, 2, bad, bad, 0]);
      assert.equal(suback.messageId, 11);
      // The granted filters work; the connection stays open.
      await pub.publishAsync('filt/y/x', 'one', { qos: 1 });
      await pub.publishAsync('filt/ok/deep/er', 'two', { qos: 1 });
      await pub.publishAsync('filt/q', 'three', { qos: 1 });
      const topics: string[] = [];
      for (const t of ['filt/y/x', 'filt/ok/deep/er', 'filt/q']) topics.push(((await c.next('publish', (p) => (p as mp.IPublishPacket).topic === t)) as mp.IPublishPacket).topic);
      assert.deepEqual(topics, ['filt/y/x', 'filt/ok/deep/er', 'filt/q']);
      assert.equal(c.closed, false);
      assert.equal(c.disconnectReason(), undefined);
      c.destroy();
      await bystandersWork();
    });
  }

  for (const first of ['pingreq', 'publish', 'subscribe'] as const) {
    test(`a ${first.toUpperCase()} before CONNECT closes the connection without a CONNACK`, async () => {
      const c = await RawClient.open(broker.mqttPort, 4);
      if (first === 'pingreq') c.send({ cmd: 'pingreq' });
      else if (first === 'publish') c.send({ cmd: 'publish', topic: 'early/t', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
      else c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'early/#', qos: 0 }] });
      await c.waitClosed(5000);
      assert.deepEqual(
        c.packets.map((p) => p.cmd),
        [],
        'the broker answered a connection that never sent CONNECT',
      );
      await bystandersWork();
    });
  }

  test('an unsupported protocol level (6) gets CONNACK return code 1, then the connection closes', async () => {
    const c = await RawClient.open(broker.mqttPort, 4);
    const b = gen({ cmd: 'connect', clientId: cid('level6'), protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 60 }, 4);
    const at = b.indexOf(Buffer.from('MQTT')) + 4;
    assert.equal(b[at], 4);
    b[at] = 6;
    c.sendBytes(b);
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 1);
    assert.equal(connack.sessionPresent, false);
    await c.waitClosed(5000);
    assert.deepEqual(
      c.packets.map((p) => p.cmd),
      ['connack'],
    );
    await bystandersWork();
  });
});

describe('empty client identifiers', () => {
  test('3.1.1 with clean session = 1 is accepted', async () => {
    const c = await RawClient.open(broker.mqttPort, 4);
    c.send({ cmd: 'connect', clientId: '', protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 0);
    // The connection works: a ping is answered.
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
    c.destroy();
    await bystandersWork();
  });

  test('3.1.1 with clean session = 0 gets CONNACK 2 and is closed', async () => {
    const c = await RawClient.open(broker.mqttPort, 4);
    // mqtt-packet refuses to generate this CONNECT, so it is built by hand (flags 0x00: clean session = 0).
    const body = Buffer.concat([str16('MQTT'), Buffer.from([4, 0x00, 0x00, 0x3c]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 2);
    assert.equal(connack.sessionPresent, false);
    await c.waitClosed(5000);
    await bystandersWork();
  });

  test('5.0 with Clean Start = 0 gets CONNACK 0x85 (Client Identifier not valid) and is closed', async () => {
    const c = await RawClient.open(broker.mqttPort, 5);
    // mqtt-packet refuses to generate this CONNECT: flags 0x00 (Clean Start = 0), keep-alive 60, no properties.
    const body = Buffer.concat([str16('MQTT'), Buffer.from([5, 0x00, 0x00, 0x3c, 0x00]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0x85);
    assert.equal(connack.sessionPresent, false);
    assert.equal(connack.properties?.assignedClientIdentifier, undefined);
    await c.waitClosed(5000);
    await bystandersWork();
  });

  test('3.1 (MQIsdp, level 3) gets CONNACK 2 and is closed', async () => {
    const c = await RawClient.open(broker.mqttPort, 4);
    // mqtt-packet refuses to generate an empty 3.1 client id, so the CONNECT is built by hand.
    const body = Buffer.concat([str16('MQIsdp'), Buffer.from([3, 0x02, 0x00, 0x3c]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 2);
    await c.waitClosed(5000);
    await bystandersWork();
  });

  test('3.1 with a client id is accepted (control for the case above)', async () => {
    const c = await RawClient.open(broker.mqttPort, 4);
    const body = Buffer.concat([str16('MQIsdp'), Buffer.from([3, 0x02, 0x00, 0x3c]), str16(cid('v31'))]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 0);
    c.destroy();
  });

  test('5.0 gets an Assigned Client Identifier that then works as a client id', async () => {
    const c = await RawClient.open(broker.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: '', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0);
    const assigned = connack.properties?.assignedClientIdentifier;
    assert.ok(typeof assigned === 'string' && assigned.length > 0, 'no Assigned Client Identifier in CONNACK');
    // A second empty-id client gets a different identifier.
    const d = await RawClient.open(broker.mqttPort, 5);
    d.send({ cmd: 'connect', clientId: '', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const other = ((await d.next('connack')) as mp.IConnackPacket).properties?.assignedClientIdentifier;
    assert.ok(other && other !== assigned, 'assigned identifiers must be unique');
    assert.equal(c.closed, false);
    c.destroy();
    d.destroy();
    await bystandersWork();
  });
});

describe('deadlines', () => {
  test('keep-alive is enforced at 1.5 × (5.0: DISCONNECT 0x8D); a silent-for-2-s client and a pinging client stay', async () => {
    const KEEPALIVE = 2;
    const t0 = Date.now();
    const silent5 = await RawClient.connected(broker.mqttPort, cid('ka5'), 5, { keepalive: KEEPALIVE });
    const silent4 = await RawClient.connected(broker.mqttPort, cid('ka4'), 4, { keepalive: KEEPALIVE });
    const pinger = await RawClient.connected(broker.mqttPort, cid('kaping'), 5, { keepalive: KEEPALIVE });
    const closedAt = new Map<RawClient, number>();
    for (const c of [silent5, silent4, pinger]) c.socket.on('close', () => closedAt.set(c, Date.now() - t0));
    // The pinger pings every keep-alive period, as a client should.
    const ping = setInterval(() => pinger.send({ cmd: 'pingreq' }), KEEPALIVE * 1000);
    try {
      // The pinger's n-th PINGRESP: an event at n × keep-alive after the clients connected.
      const pingresps = (): typeof pinger.packets => pinger.packets.filter((p) => p.cmd === 'pingresp');
      const pingresp = (n: number): Promise<unknown> => pinger.next('pingresp', (p) => pingresps().indexOf(p) >= n - 1, 10_000);
      // Silent for 2 s (= the keep-alive, the first ping's answer): still connected.
      await pingresp(1);
      assert.equal(silent5.closed, false, 'closed after 2 s of silence with keep-alive 2 s');
      assert.equal(silent4.closed, false, 'closed after 2 s of silence with keep-alive 2 s');
      // Silent for more than 3 s (1.5 × 2 s): dropped (the ticker checks once a second; no upper bound: slow boxes are slow).
      await Promise.all([silent5.waitClosed(10_000), silent4.waitClosed(10_000)]);
      for (const c of [silent5, silent4]) {
        const at = closedAt.get(c)!;
        assert.ok(at >= 3000, `dropped after ${at} ms, expected after 3 s`);
      }
      assert.equal(silent5.disconnectReason(), 0x8d);
      assert.equal(silent4.disconnectReason(), undefined);
      // The pinger lives past the others' deadline by a full period: one more ping answered.
      await pingresp(pingresps().length + 1);
      assert.equal(pinger.closed, false, 'a client that pings was dropped');
      assert.ok(pinger.packets.filter((p) => p.cmd === 'pingresp').length >= 2, 'pings were not answered');
    } finally {
      clearInterval(ping);
      pinger.destroy();
    }
    await bystandersWork();
  });

  test('a connection that never sends CONNECT is closed after mqtt.idle_timeout (1 s)', async () => {
    const t0 = Date.now();
    const c = await RawClient.open(broker.mqttPort, 4);
    // A partial CONNECT does not count as CONNECT.
    c.sendBytes(Buffer.from([0x10, 0x20, 0x00]));
    await c.waitClosed(4000);
    const took = Date.now() - t0;
    assert.ok(took >= 900, `closed after ${took} ms, before the idle timeout`);
    assert.deepEqual(
      c.packets.map((p) => p.cmd),
      [],
    );
    await bystandersWork();
  });
});

describe('5.0 Receive Maximum (mqtt.max_inflight = 2)', () => {
  test('CONNACK announces Receive Maximum 2', async () => {
    const c = await RawClient.open(broker.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: cid('rm'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.properties?.receiveMaximum, MAX_INFLIGHT);
    c.destroy();
  });

  test('two unacknowledged QoS 1 PUBLISHes are fine, a third in the same burst gets DISCONNECT 0x93', async () => {
    // The PUBLISHes go out in one write, so the broker parses them all in one turn, before any
    // of them can be durable and acknowledged.
    const pubs = (ids: number[]): Buffer => Buffer.concat(ids.map((messageId) => gen({ cmd: 'publish', topic: 'rm/q1', payload: Buffer.from(`p${messageId}`), qos: 1, messageId, retain: false, dup: false }, 5)));
    const c = await RawClient.connected(broker.mqttPort, cid('rmq1'), 5);
    c.sendBytes(pubs([1, 2]));
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 1);
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 2);
    c.sendBytes(pubs([3, 4]));
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 4);
    assert.equal(c.closed, false);
    c.sendBytes(pubs([5, 6, 7]));
    await expectClosed(c, 5, 0x93);
    await bystandersWork();
  });

  test('QoS 2 PUBLISHes count until PUBCOMP: a third without PUBREL gets DISCONNECT 0x93 [MQTT-3.3.4-7]', async () => {
    const c = await RawClient.connected(broker.mqttPort, cid('rmq2'), 5);
    const publish = (messageId: number): void => c.send({ cmd: 'publish', topic: 'rm/q2', payload: Buffer.from(`p${messageId}`), qos: 2, messageId, retain: false, dup: false });
    const pubrec = (id: number): Promise<unknown> => c.next('pubrec', (p) => (p as mp.IPubrecPacket).messageId === id);
    publish(1);
    await pubrec(1);
    publish(2);
    await pubrec(2);
    // Completing one frees one slot.
    c.send({ cmd: 'pubrel', messageId: 1 });
    await c.next('pubcomp', (p) => (p as mp.IPubcompPacket).messageId === 1);
    publish(3);
    await pubrec(3);
    // 2 and 3 are PUBREC'd but not complete: a third is one more than Receive Maximum.
    publish(4);
    await expectClosed(c, 5, 0x93);
    assert.ok(!c.packets.some((p) => p.cmd === 'pubrec' && (p as mp.IPubrecPacket).messageId === 4), 'PUBREC for the PUBLISH over Receive Maximum');
    await bystandersWork();
  });
});
