import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { RC } from '@tributary/mqtt';
import { IncomingWindow } from '../src/session/incoming';
import { channel, connectPacket, testBroker, wire } from './harness';

describe('incoming QoS 1/2 limits, owned by the session', () => {
  it('Receive Maximum: the PUBLISH past it is refused with 0x93; an acknowledgement makes room', () => {
    const w = new IncomingWindow(100);
    w.connected(2);
    assert.equal(w.begin(1, 1), 'publish');
    assert.equal(w.begin(2, 2), 'publish');
    assert.equal(w.begin(1, 3), RC.RECEIVE_MAXIMUM_EXCEEDED);
    w.stored(1, 1);
    assert.equal(w.begin(1, 4), 'publish');
    // QoS 2 counts until PUBCOMP, not PUBREC [MQTT-3.3.4-7].
    w.stored(2, 2);
    assert.equal(w.begin(1, 5), RC.RECEIVE_MAXIMUM_EXCEEDED);
    assert.equal(w.release(2), true);
    assert.equal(w.begin(1, 6), 'publish');
    assert.equal(w.release(2), false, 'a second PUBREL for the id is unknown');
  });

  it('QoS 2: a resend while storing is skipped, after storing acknowledged; max_awaiting_rel bounds the ids', () => {
    const w = new IncomingWindow(2);
    w.connected(Infinity);
    assert.equal(w.begin(2, 1), 'publish');
    assert.equal(w.begin(2, 1), 'skip');
    w.stored(2, 1);
    assert.equal(w.begin(2, 1), 'acknowledge');
    assert.equal(w.begin(2, 2), 'publish');
    w.stored(2, 2);
    assert.equal(w.begin(2, 3), RC.RECEIVE_MAXIMUM_EXCEEDED);
  });

  it('a QoS 2 message stored after its connection dropped is acknowledged on the resend, not published twice', async () => {
    const { broker, config, close } = await testBroker();
    try {
      const persistent = { clean: false, properties: { sessionExpiryInterval: 60 } };
      const sub = channel(broker, config);
      sub.ch.handleIn(wire(connectPacket('in-sub', 5), 5));
      sub.ch.handleIn(wire({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'in/t', qos: 2 }] }, 5));
      await sub.io.next((p) => p.cmd === 'suback');
      const first = channel(broker, config);
      first.ch.handleIn(wire(connectPacket('in-pub', 5, persistent), 5));
      const publish: mp.IPublishPacket = { cmd: 'publish', topic: 'in/t', payload: Buffer.from('once'), qos: 2, messageId: 9, retain: false, dup: false };
      first.ch.handleIn(wire(publish, 5));
      first.ch.handleClosed(); // gone before PUBREC
      await sub.io.next((p) => p.cmd === 'publish');
      // Routed before it was durable; the session records it once the append is (a resend before that is skipped).
      const session = broker.session('in-pub')!;
      for (let i = 0; !session.awaitingRel.has(9); i++) {
        assert.ok(i < 2000, 'the stored message never reached awaiting-release');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const again = channel(broker, config);
      again.ch.handleIn(wire(connectPacket('in-pub', 5, persistent), 5));
      again.ch.handleIn(wire({ ...publish, dup: true }, 5));
      const pubrec = (await again.io.next((p) => p.cmd === 'pubrec')) as mp.IPubrecPacket;
      assert.equal(pubrec.messageId, 9);
      await broker.persist(broker.session('in-sub')!);
      assert.equal(sub.io.packets.filter((p) => p.cmd === 'publish').length, 1);
    } finally {
      await close();
    }
  });
});
