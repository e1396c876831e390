import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import type { Broker } from '../src';
import type { TributaryConfig } from '@tributary/common';
import { channel, connectPacket, testBroker, wire } from './harness';

const connect = (clientId: string, protocolVersion: 4 | 5 = 4, extra: Partial<mp.IConnectPacket> = {}): mp.IConnectPacket => connectPacket(clientId, protocolVersion, extra);

describe('channel state machine', () => {
  let broker: Broker;
  let config: TributaryConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker()));
  after(() => close());

  const open = (clientId: string, v: 4 | 5 = 4, extra: Partial<mp.IConnectPacket> = {}) => {
    const c = channel(broker, config);
    c.ch.handleIn(wire(connect(clientId, v, extra), v));
    return c;
  };

  it('requires CONNECT first [MQTT-3.1.0-1]', () => {
    const { ch, io } = channel(broker, config);
    ch.handleIn(wire({ cmd: 'pingreq' }));
    assert.equal(io.ended, true);
    assert.equal(ch.state, 'closed');
    assert.deepEqual(io.cmds(), []);
  });

  it('answers CONNECT with CONNACK and closes on a second CONNECT [MQTT-3.1.0-2]', () => {
    const { ch, io } = open('c1');
    assert.deepEqual(io.cmds(), ['connack']);
    assert.equal((io.packets[0] as mp.IConnackPacket).returnCode, 0);
    assert.equal(io.keepalive, 30);
    ch.handleIn(wire(connect('c1')));
    assert.equal(io.ended, true);
  });

  it('assigns a client identifier to 5.0 clients and refuses empty ids on 3.1.1 without clean session', () => {
    const v5 = open('', 5);
    const ack = v5.io.packets[0] as mp.IConnackPacket;
    assert.equal(ack.reasonCode, 0);
    assert.match(ack.properties?.assignedClientIdentifier ?? '', /^auto-/);
    // mqtt-packet will not generate this CONNECT, so hand the parsed form straight to the channel.
    const v3 = channel(broker, config);
    v3.ch.handleIn({ ...connect('', 4), clean: false, length: 12 } as mp.IConnectPacket);
    assert.equal((v3.io.packets[0] as mp.IConnackPacket).returnCode, 2);
    assert.equal(v3.io.ended, true);
    const v3clean = open('', 4, { clean: true });
    assert.equal((v3clean.io.packets[0] as mp.IConnackPacket).returnCode, 0);
  });

  it('refuses an unsupported authentication method with 0x8C', () => {
    const { io } = open('auth', 5, { properties: { authenticationMethod: 'SCRAM-SHA-1' } });
    assert.equal((io.packets[0] as mp.IConnackPacket).reasonCode, 0x8c);
    assert.equal(io.ended, true);
  });

  it('routes QoS 1 and acknowledges after the message is durable', async () => {
    const sub = open('sub1');
    sub.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/+', qos: 1 }] }));
    const suback = (await sub.io.next((p) => p.cmd === 'suback')) as mp.ISubackPacket;
    assert.deepEqual(suback.granted, [1]);
    const pub = open('pub1');
    pub.ch.handleIn(wire({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false }));
    const puback = (await pub.io.next((p) => p.cmd === 'puback')) as mp.IPubackPacket;
    assert.equal(puback.messageId, 7);
    const got = (await sub.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    assert.equal(got.topic, 'a/b');
    assert.equal(got.qos, 1);
    assert.equal(got.payload.toString(), 'x');
  });

  it('downgrades to the subscription QoS', async () => {
    const sub = open('sub0');
    sub.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'down', qos: 0 }] }));
    await sub.io.next((p) => p.cmd === 'suback');
    const pub = open('pub0');
    pub.ch.handleIn(wire({ cmd: 'publish', topic: 'down', payload: Buffer.from('x'), qos: 2, messageId: 3, retain: false, dup: false }));
    const got = (await sub.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    assert.equal(got.qos, 0);
  });

  it('handles QoS 2 exactly once: a resent PUBLISH is acknowledged, not republished', async () => {
    const sub = open('sub2');
    sub.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q2', qos: 2 }] }));
    await sub.io.next((p) => p.cmd === 'suback');
    const pub = open('pub2');
    const publish: mp.IPublishPacket = { cmd: 'publish', topic: 'q2', payload: Buffer.from('once'), qos: 2, messageId: 9, retain: false, dup: false };
    pub.ch.handleIn(wire(publish));
    await pub.io.next((p) => p.cmd === 'pubrec');
    pub.ch.handleIn(wire({ ...publish, dup: true }));
    pub.ch.handleIn(wire({ cmd: 'pubrel', messageId: 9 }));
    await pub.io.next((p) => p.cmd === 'pubcomp');
    assert.equal(pub.io.packets.filter((p) => p.cmd === 'pubrec').length, 2);
    const got = (await sub.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    sub.ch.handleIn(wire({ cmd: 'pubrec', messageId: got.messageId }));
    await sub.io.next((p) => p.cmd === 'pubrel');
    sub.ch.handleIn(wire({ cmd: 'pubcomp', messageId: got.messageId }));
    // A marker published after the resent PUBLISH, on the same topic and QoS: a wrongly routed
    // duplicate would reach the subscriber before it.
    pub.ch.handleIn(wire({ ...publish, payload: Buffer.from('marker'), messageId: 10 }));
    const marker = (await sub.io.next((p) => p.cmd === 'publish' && p.payload.toString() === 'marker')) as mp.IPublishPacket;
    sub.ch.handleIn(wire({ cmd: 'pubrec', messageId: marker.messageId }));
    await sub.io.next((p) => p.cmd === 'pubrel' && p.messageId === marker.messageId);
    sub.ch.handleIn(wire({ cmd: 'pubcomp', messageId: marker.messageId }));
    assert.deepEqual(
      sub.io.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mp.IPublishPacket).payload.toString()),
      ['once', 'marker'],
    );
    assert.equal(broker.session('sub2')?.inflightCount, 0);
  });

  it('disconnects a 5.0 client publishing to a wildcard topic with 0x90', () => {
    const { ch, io } = open('wild', 5);
    ch.handleIn(wire({ cmd: 'publish', topic: 'a/#', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false }, 5));
    const d = io.packets.at(-1) as mp.IDisconnectPacket;
    assert.equal(d.cmd, 'disconnect');
    assert.equal(d.reasonCode, 0x90);
    assert.equal(io.ended, true);
  });

  it('disconnects on topic alias 0 with 0x94', () => {
    const { ch, io } = open('alias', 5);
    ch.handleIn(wire({ cmd: 'publish', topic: 'a', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: 0 } }, 5));
    assert.equal((io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x94);
  });

  it('takes over a session: the first 5.0 connection gets DISCONNECT 0x8E', () => {
    const first = open('same', 5);
    const second = open('same', 5);
    assert.equal((first.io.packets.at(-1) as mp.IDisconnectPacket).reasonCode, 0x8e);
    assert.equal(first.io.ended, true);
    assert.equal(second.ch.state, 'connected');
    assert.equal(broker.session('same')?.owner, second.ch);
  });

  it('keeps a persistent session and queues QoS 1 while offline, resending in-flight with DUP', async () => {
    const a = open('persist', 4, { clean: false });
    a.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'p', qos: 1 }] }));
    await a.io.next((p) => p.cmd === 'suback');
    const pub = open('pubp');
    pub.ch.handleIn(wire({ cmd: 'publish', topic: 'p', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false }));
    const first = (await a.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    a.ch.handleClosed(); // connection lost before PUBACK
    pub.ch.handleIn(wire({ cmd: 'publish', topic: 'p', payload: Buffer.from('2'), qos: 1, messageId: 2, retain: false, dup: false }));
    await pub.io.next((p) => p.cmd === 'puback' && p.messageId === 2);
    const b = open('persist', 4, { clean: false });
    assert.equal(b.io.packets[0]?.cmd, 'connack', 'CONNACK comes first [MQTT-3.2.0-1]');
    assert.equal((b.io.packets[0] as mp.IConnackPacket).sessionPresent, true);
    const resent = (await b.io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
    assert.equal(resent.dup, true);
    assert.equal(resent.messageId, first.messageId);
    const queued = (await b.io.next((p) => p.cmd === 'publish' && p.payload.toString() === '2')) as mp.IPublishPacket;
    assert.equal(queued.dup, false);
  });
});
