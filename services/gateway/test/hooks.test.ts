import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import type { TributaryConfig } from '@tributary/common';
import type { Broker } from '../src';
import { channel, connectPacket, testBroker, wire } from './harness';

const connect = (clientId: string, extra: Partial<mp.IConnectPacket> = {}): mp.IConnectPacket => connectPacket(clientId, 5, extra);

describe('hook points fired by the channel and the broker', () => {
  let broker: Broker;
  let config: TributaryConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker()));
  after(() => close());

  /** Records every point it is registered at, in order, as "<point> <detail>"; returns a function that removes them. */
  function record(points: Parameters<Broker['hooks']['add']>[0][], events: string[]): () => void {
    const offs = points.map((p) =>
      broker.hooks.add(p, { name: 'recorder', priority: 'plugins' }, ((...args: unknown[]) => {
        const a = args[0] as { clientId?: string; topic?: string };
        const b = args[1] as { topic?: string; filter?: string } | string | number | undefined;
        const who = a.topic ?? a.clientId ?? '';
        const detail = typeof b === 'string' || typeof b === 'number' ? `${who} ${b}` : who + (b && typeof b === 'object' && b.topic ? ` ${b.topic}` : '');
        events.push(`${p} ${detail}`);
        return undefined;
      }) as never),
    );
    return () => offs.forEach((o) => o());
  }

  it('connect, subscribe, publish, deliver, ack, disconnect: EMQX order', async () => {
    const events: string[] = [];
    const off = record(
      ['client.connect', 'client.authenticate', 'session.created', 'client.connected', 'client.connack', 'client.subscribe', 'session.subscribed', 'client.authorize', 'message.publish', 'message.delivered', 'message.acked', 'client.disconnected', 'session.terminated'],
      events,
    );
    try {
      const { ch, io } = channel(broker, config);
      ch.handleIn(wire(connect('h1'), 5));
      ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'h/t', qos: 1 }] }, 5));
      await io.next((p) => p.cmd === 'suback');
      ch.handleIn(wire({ cmd: 'publish', topic: 'h/t', payload: Buffer.from('x'), qos: 1, messageId: 2, retain: false, dup: false }, 5));
      const pub = (await io.next((p) => p.cmd === 'publish')) as mp.IPublishPacket;
      ch.handleIn(wire({ cmd: 'puback', messageId: pub.messageId }, 5));
      ch.handleIn(wire({ cmd: 'disconnect' }, 5));
      assert.deepEqual(events, [
        'client.connect h1',
        'client.authenticate h1',
        'session.created h1',
        'client.connected h1',
        'client.connack h1 0',
        'client.subscribe h1',
        'client.authorize h1 h/t',
        'session.subscribed h1 h/t',
        'client.authorize h1 h/t',
        'message.publish h/t',
        'message.delivered h1 h/t',
        'message.acked h1 h/t',
        'client.disconnected h1 normal',
        'session.terminated h1 normal',
      ]);
    } finally {
      off();
    }
  });

  it('a takeover and a clean start tell session.takenover, session.discarded and client.disconnected', () => {
    const events: string[] = [];
    const off = record(['session.takenover', 'session.discarded', 'session.resumed', 'client.disconnected'], events);
    try {
      const first = channel(broker, config);
      first.ch.handleIn(wire(connect('h2', { clean: false, properties: { sessionExpiryInterval: 60 } }), 5));
      const second = channel(broker, config);
      second.ch.handleIn(wire(connect('h2', { clean: false, properties: { sessionExpiryInterval: 60 } }), 5));
      const third = channel(broker, config);
      third.ch.handleIn(wire(connect('h2', { clean: true }), 5));
      assert.deepEqual(events, ['session.takenover h2', 'client.disconnected h2 takenover', 'session.resumed h2', 'session.takenover h2', 'client.disconnected h2 takenover', 'session.discarded h2']);
      third.ch.handleIn(wire({ cmd: 'disconnect' }, 5));
    } finally {
      off();
    }
  });

  it('client.authorize deny: PUBACK 0x87 and nothing published; SUBACK 0x87 for that filter only', async () => {
    const off = broker.hooks.add('client.authorize', { name: 'deny-secret', priority: 'plugins' }, (_c, req) => (req.topic.startsWith('secret') ? { stop: true, result: 'deny' } : undefined));
    const published: string[] = [];
    const offPub = broker.hooks.add('message.publish', { name: 'seen', priority: 'plugins' }, (m) => void published.push(m.topic));
    try {
      const { ch, io } = channel(broker, config);
      ch.handleIn(wire(connect('h3'), 5));
      ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'open/#', qos: 1 }, { topic: 'secret/#', qos: 1 }] }, 5));
      const suback = (await io.next((p) => p.cmd === 'suback')) as mp.ISubackPacket;
      assert.deepEqual(suback.granted, [1, 0x87]);
      ch.handleIn(wire({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('x'), qos: 1, messageId: 7, retain: false, dup: false }, 5));
      const ack = (await io.next((p) => p.cmd === 'puback')) as mp.IPubackPacket;
      assert.equal(ack.reasonCode, 0x87);
      assert.deepEqual(published, []);
      ch.handleIn(wire({ cmd: 'disconnect' }, 5));
    } finally {
      off();
      offPub();
    }
  });

  it('an asynchronous message.publish keeps one client\'s messages in order', async () => {
    // The first message waits for "I/O"; the second would be quicker if nothing kept the order.
    const off = broker.hooks.add('message.publish', { name: 'slow-first', priority: 'plugins' }, (m) =>
      m.payload.toString() === '1' ? new Promise((resolve) => setTimeout(() => resolve({ ...m, payload: Buffer.from('1 (checked)') }), 30)) : undefined,
    );
    try {
      const sub = channel(broker, config);
      sub.ch.handleIn(wire(connect('h4-sub'), 5));
      sub.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'order/t', qos: 0 }] }, 5));
      await sub.io.next((p) => p.cmd === 'suback');
      const pub = channel(broker, config);
      pub.ch.handleIn(wire(connect('h4-pub'), 5));
      for (const payload of ['1', '2', '3']) pub.ch.handleIn(wire({ cmd: 'publish', topic: 'order/t', payload: Buffer.from(payload), qos: 0, retain: false, dup: false }, 5));
      await sub.io.next((p) => p.cmd === 'publish' && (p as mp.IPublishPacket).payload.toString() === '3');
      const got = sub.io.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mp.IPublishPacket).payload.toString());
      assert.deepEqual(got, ['1 (checked)', '2', '3']);
    } finally {
      off();
    }
  });

  it('message.dropped tells a message nobody subscribed to', async () => {
    const dropped: string[] = [];
    const off = broker.hooks.add('message.dropped', { name: 'dropped', priority: 'plugins' }, (m, reason) => void dropped.push(`${m.topic} ${reason}`));
    try {
      const { ch, io } = channel(broker, config);
      ch.handleIn(wire(connect('h5'), 5));
      ch.handleIn(wire({ cmd: 'publish', topic: 'nobody/here', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false }, 5));
      await io.next((p) => p.cmd === 'puback');
      assert.deepEqual(dropped, ['nobody/here no_subscribers']);
    } finally {
      off();
    }
  });
});
