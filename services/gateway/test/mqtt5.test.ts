import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import type { TributaryConfig } from '@tributary/common';
import type { Broker } from '../src';
import { channel, connectPacket, testBroker, wire } from './harness';

const v5connect = (clientId: string, properties: mp.IConnectPacket['properties'] = {}): mp.IConnectPacket => connectPacket(clientId, 5, { properties });

const publish = (topic: string, payload: string, qos: 0 | 1 | 2 = 0, messageId?: number, properties?: mp.IPublishPacket['properties']): mp.IPublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos,
  retain: false,
  dup: false,
  messageId,
  properties,
});

describe('MQTT 5.0 flow control and aliases (raw packets through the channel)', () => {
  let broker: Broker;
  let config: TributaryConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker({ 'mqtt.max_inflight': 2 })));
  after(() => close());

  const open = (clientId: string, props: mp.IConnectPacket['properties'] = {}) => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(v5connect(clientId, props), 5));
    return c;
  };
  const subscribe = async (c: ReturnType<typeof open>, topic: string, qos: 0 | 1 | 2) => {
    c.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] }, 5));
    await c.io.next((p) => p.cmd === 'suback');
  };

  it('advertises Receive Maximum, Topic Alias Maximum and Maximum Packet Size in CONNACK', () => {
    const { io } = open('adv');
    const props = (io.packets[0] as mp.IConnackPacket).properties!;
    assert.equal(props.receiveMaximum, 2);
    assert.equal(props.topicAliasMaximum, 65535);
    assert.equal(props.maximumPacketSize, config.mqtt.max_packet_size);
    assert.equal(props.sharedSubscriptionAvailable, true);
  });

  it('assigns server-to-client topic aliases up to the client maximum', async () => {
    const sub = open('alias-sub', { topicAliasMaximum: 1 });
    await subscribe(sub, 'al/#', 0);
    const pub = open('alias-pub');
    for (const t of ['al/a', 'al/a', 'al/b']) pub.ch.handleIn(wire(publish(t, t), 5));
    await sub.io.next((p) => p.cmd === 'publish' && (p as mp.IPublishPacket).topic === 'al/b');
    const got = sub.io.packets.filter((p): p is mp.IPublishPacket => p.cmd === 'publish');
    assert.deepEqual(
      got.map((p) => [p.topic, p.properties?.topicAlias]),
      [
        ['al/a', 1],
        ['', 1],
        ['al/b', undefined],
      ],
    );
  });

  it("never has more unacknowledged deliveries in flight than the client's Receive Maximum", async () => {
    const sub = open('rm-sub', { receiveMaximum: 1 });
    await subscribe(sub, 'rm', 1);
    const pub = open('rm-pub');
    for (let i = 1; i <= 3; i++) {
      pub.ch.handleIn(wire(publish('rm', `m${i - 1}`, 1, i), 5));
      await pub.io.next((p) => p.cmd === 'puback' && p.messageId === i);
    }
    const sent = () => sub.io.packets.filter((p): p is mp.IPublishPacket => p.cmd === 'publish');
    assert.equal(sent().length, 1);
    sub.ch.handleIn(wire({ cmd: 'puback', messageId: sent()[0]!.messageId }, 5));
    assert.equal(sent().length, 2);
    assert.equal(sent()[1]!.payload.toString(), 'm1');
  });

  it('drops, never sends, a packet larger than the client Maximum Packet Size', async () => {
    const sub = open('mps-sub', { maximumPacketSize: 64 });
    await subscribe(sub, 'mps', 0);
    const pub = open('mps-pub');
    const dropped = broker.metrics['messages.dropped.too_large'];
    pub.ch.handleIn(wire(publish('mps', 'x'.repeat(200)), 5));
    pub.ch.handleIn(wire(publish('mps', 'small'), 5));
    const got = (await sub.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    assert.equal(got.payload.toString(), 'small');
    assert.equal(broker.metrics['messages.dropped.too_large'], dropped + 1);
  });

  it('disconnects a client exceeding our Receive Maximum with 0x93', async () => {
    const pub = open('rm-over');
    // QoS 2 stays unacknowledged until PUBREL, so three of them exceed a maximum of 2.
    for (let i = 1; i <= 3; i++) pub.ch.handleIn(wire(publish('over', 'x', 2, i), 5));
    assert.equal((pub.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x93);
  });

  it('resolves client-to-server aliases and rejects an unknown alias with 0x82', async () => {
    const sub = open('in-alias-sub');
    await subscribe(sub, 'in/alias', 0);
    const pub = open('in-alias-pub');
    pub.ch.handleIn(wire(publish('in/alias', 'first', 0, undefined, { topicAlias: 5 }), 5));
    pub.ch.handleIn(wire(publish('', 'second', 0, undefined, { topicAlias: 5 }), 5));
    await sub.io.next((p) => p.cmd === 'publish' && (p as mp.IPublishPacket).payload.toString() === 'second');
    pub.ch.handleIn(wire(publish('', 'third', 0, undefined, { topicAlias: 6 }), 5));
    assert.equal((pub.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x82);
  });
});

describe('MQTT 5.0 property validation', () => {
  let broker: Broker;
  let config: TributaryConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker()));
  after(() => close());

  it('closes with 0x81 on a property not allowed in the packet, 0x82 on a repeated one', () => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(v5connect('props'), 5));
    // The parser accepts any known property anywhere; hand the parsed form to the channel.
    c.ch.handleIn({ ...publish('t', 'x'), properties: { sessionExpiryInterval: 5 } } as unknown as mp.IPublishPacket);
    assert.equal((c.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x81);

    const d = channel(broker, config);
    d.ch.handleIn(wire(v5connect('props2'), 5));
    d.ch.handleIn({ ...publish('t', 'x'), properties: { contentType: ['a', 'b'] } } as unknown as mp.IPublishPacket);
    assert.equal((d.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x82);
  });

  it('answers a CONNECT with a forbidden property with CONNACK 0x81', () => {
    const c = channel(broker, config);
    c.ch.handleIn({ ...v5connect('bad-connect'), properties: { topicAlias: 3 } } as unknown as mp.IConnectPacket);
    assert.equal((c.io.packets[0] as mp.IConnackPacket).reasonCode, 0x81);
    assert.equal(c.io.ended, true);
  });

  it('refuses a Subscription Identifier from a client in PUBLISH [MQTT-3.3.4-6]', () => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(v5connect('subid-pub'), 5));
    c.ch.handleIn({ ...publish('t', 'x'), properties: { subscriptionIdentifier: 4 } } as unknown as mp.IPublishPacket);
    assert.equal((c.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x82);
  });
});

describe('MQTT 5.0 enhanced authentication hook', () => {
  let broker: Broker;
  let config: TributaryConfig;
  let close: () => Promise<void>;
  before(async () => {
    ({ broker, config, close } = await testBroker());
    // A toy challenge-response method: the client must answer the challenge with "secret".
    broker.enhancedAuth.register({
      method: 'TOY',
      start: () => ({ result: 'continue', data: Buffer.from('challenge') }),
      continue: (_ctx, data) => (data?.toString() === 'secret' ? { result: 'success', data: Buffer.from('welcome') } : { result: 'fail', reasonCode: 0x86 }),
    });
  });
  after(() => close());

  const auth = (reasonCode: number, data: string): mp.IAuthPacket => ({ cmd: 'auth', reasonCode, properties: { authenticationMethod: 'TOY', authenticationData: Buffer.from(data) } });

  it('runs the AUTH exchange before CONNACK and supports re-authentication', async () => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(v5connect('enh', { authenticationMethod: 'TOY' }), 5));
    const challenge = (await c.io.next((p) => p.cmd === 'auth')) as mp.IAuthPacket;
    assert.equal(challenge.reasonCode, 0x18);
    assert.equal(challenge.properties?.authenticationData?.toString(), 'challenge');
    assert.equal(c.ch.state, 'connecting');
    c.ch.handleIn(wire(auth(0x18, 'secret'), 5));
    const ack = (await c.io.next((p) => p.cmd === 'connack')) as mp.IConnackPacket;
    assert.equal(ack.reasonCode, 0);
    assert.equal(ack.properties?.authenticationMethod, 'TOY');
    assert.equal(ack.properties?.authenticationData?.toString(), 'welcome');
    // Re-authentication while connected: AUTH 0x19, challenge, answer, AUTH 0x00.
    c.ch.handleIn(wire(auth(0x19, ''), 5));
    await c.io.next((p) => p.cmd === 'auth' && p.reasonCode === 0x18 && c.io.packets.filter((q) => q.cmd === 'auth').length === 2);
    c.ch.handleIn(wire(auth(0x18, 'secret'), 5));
    const done = (await c.io.next((p) => p.cmd === 'auth' && p.reasonCode === 0)) as mp.IAuthPacket;
    assert.equal(done.properties?.authenticationMethod, 'TOY');
    assert.equal(c.ch.state, 'connected');
  });

  it('refuses a wrong answer with the provider reason code, and other packets during the exchange', async () => {
    const bad = channel(broker, config);
    bad.ch.handleIn(wire(v5connect('enh-bad', { authenticationMethod: 'TOY' }), 5));
    await bad.io.next((p) => p.cmd === 'auth');
    bad.ch.handleIn(wire(auth(0x18, 'guess'), 5));
    const ack = (await bad.io.next((p) => p.cmd === 'connack')) as mp.IConnackPacket;
    assert.equal(ack.reasonCode, 0x86);
    assert.equal(bad.io.ended, true);

    const early = channel(broker, config);
    early.ch.handleIn(wire(v5connect('enh-early', { authenticationMethod: 'TOY' }), 5));
    await early.io.next((p) => p.cmd === 'auth');
    early.ch.handleIn(wire(publish('t', 'x'), 5));
    assert.equal(early.io.ended, true);
    assert.equal(early.io.packets.some((p) => p.cmd === 'connack' && (p as mp.IConnackPacket).reasonCode === 0), false);
  });

  it('answers an unknown method with CONNACK 0x8C', () => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(v5connect('enh-unknown', { authenticationMethod: 'KERBEROS' }), 5));
    assert.equal((c.io.packets[0] as mp.IConnackPacket).reasonCode, 0x8c);
  });
});
