// Limits (max_packet_size, Receive Maximum), deadlines (keep-alive, idle timeout) and packets in
// the wrong place (before CONNECT, a second CONNECT, wildcard topics): each closes only the
// offending connection. Setup and bystanders: test/helpers/protocol-errors.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { MAX_INFLIGHT, MAX_PACKET_SIZE, VERSIONS, brokerWithBystanders, cid, expectClosed, gen } from '../helpers/protocol-errors';
import { RawClient } from '../helpers/raw';

const setup = brokerWithBystanders();

describe('limits and protocol violations', () => {
  for (const v of VERSIONS) {
    const name = v === 5 ? '5.0' : '3.1.1';

    test(`a PUBLISH over max_packet_size closes the connection (${name}: 0x95), one under it is accepted`, async () => {
      const c = await RawClient.connected(setup.broker.mqttPort, cid('big'), v);
      c.send({ cmd: 'publish', topic: 'big/ok', payload: Buffer.alloc(MAX_PACKET_SIZE - 100, 1), qos: 1, messageId: 7, retain: false, dup: false });
      await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 7);
      c.send({ cmd: 'publish', topic: 'big/no', payload: Buffer.alloc(4096, 2), qos: 1, messageId: 8, retain: false, dup: false });
      await expectClosed(c, v, 0x95);
      assert.ok(!c.packets.some((p) => p.cmd === 'puback' && (p as mp.IPubackPacket).messageId === 8), 'the oversized PUBLISH was acknowledged');
      await setup.bystandersWork();
    });

    for (const [what, bytes] of [
      ['SUBSCRIBE', [0x82, 0x02, 0x00, 0x01]],
      ['UNSUBSCRIBE', [0xa2, 0x02, 0x00, 0x01]],
    ] as const) {
      test(`a ${what} without any topic filter closes the connection (${name}: 0x82)`, async () => {
        const c = await RawClient.connected(setup.broker.mqttPort, cid('nofilter'), v);
        // 5.0 needs the (empty) property length after the packet id.
        c.sendBytes(Buffer.from(v === 5 ? [bytes[0], 0x03, 0x00, 0x01, 0x00] : bytes));
        await expectClosed(c, v, 0x82);
        assert.ok(!c.packets.some((p) => p.cmd === 'suback' || p.cmd === 'unsuback'), `${what} without filters was acknowledged`);
        await setup.bystandersWork();
      });
    }

    test(`a second CONNECT closes the connection (${name}: 0x82)`, async () => {
      const c = await RawClient.connected(setup.broker.mqttPort, cid('twice'), v);
      c.send({ cmd: 'connect', clientId: cid('twice-again'), protocolVersion: v, protocolId: 'MQTT', clean: true, keepalive: 60 });
      await expectClosed(c, v, 0x82);
      assert.equal(c.packets.filter((p) => p.cmd === 'connack').length, 1);
      await setup.bystandersWork();
    });

    for (const topic of ['wild/+', 'wild/#', '+', 'a/+/b']) {
      test(`a PUBLISH to the wildcard topic "${topic}" closes the connection (${name}: 0x90)`, async () => {
        const c = await RawClient.connected(setup.broker.mqttPort, cid('wild'), v);
        c.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 1, messageId: 3, retain: false, dup: false });
        await expectClosed(c, v, 0x90);
        assert.ok(!c.packets.some((p) => p.cmd === 'puback'), 'a wildcard PUBLISH was acknowledged');
        await setup.bystandersWork();
      });
    }

    test(`invalid topic filters get a SUBACK failure per filter, valid ones in the same SUBSCRIBE are granted (${name})`, async () => {
      const c = await RawClient.connected(setup.broker.mqttPort, cid('filters'), v);
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
      await setup.pub.publishAsync('filt/y/x', 'one', { qos: 1 });
      await setup.pub.publishAsync('filt/ok/deep/er', 'two', { qos: 1 });
      await setup.pub.publishAsync('filt/q', 'three', { qos: 1 });
      const topics: string[] = [];
      for (const t of ['filt/y/x', 'filt/ok/deep/er', 'filt/q']) topics.push(((await c.next('publish', (p) => (p as mp.IPublishPacket).topic === t)) as mp.IPublishPacket).topic);
      assert.deepEqual(topics, ['filt/y/x', 'filt/ok/deep/er', 'filt/q']);
      assert.equal(c.closed, false);
      assert.equal(c.disconnectReason(), undefined);
      c.destroy();
      await setup.bystandersWork();
    });
  }

  for (const first of ['pingreq', 'publish', 'subscribe'] as const) {
    test(`a ${first.toUpperCase()} before CONNECT closes the connection without a CONNACK`, async () => {
      const c = await RawClient.open(setup.broker.mqttPort, 4);
      if (first === 'pingreq') c.send({ cmd: 'pingreq' });
      else if (first === 'publish') c.send({ cmd: 'publish', topic: 'early/t', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
      else c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'early/#', qos: 0 }] });
      await c.waitClosed(5000);
      assert.deepEqual(
        c.packets.map((p) => p.cmd),
        [],
        'the broker answered a connection that never sent CONNECT',
      );
      await setup.bystandersWork();
    });
  }

  test('an unsupported protocol level (6) gets CONNACK return code 1, then the connection closes', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 4);
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
    await setup.bystandersWork();
  });
});

describe('deadlines', () => {
  test('keep-alive is enforced at 1.5 × (5.0: DISCONNECT 0x8D); a silent-for-2-s client and a pinging client stay', async () => {
    const KEEPALIVE = 2;
    const t0 = Date.now();
    const silent5 = await RawClient.connected(setup.broker.mqttPort, cid('ka5'), 5, { keepalive: KEEPALIVE });
    const silent4 = await RawClient.connected(setup.broker.mqttPort, cid('ka4'), 4, { keepalive: KEEPALIVE });
    const pinger = await RawClient.connected(setup.broker.mqttPort, cid('kaping'), 5, { keepalive: KEEPALIVE });
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
    await setup.bystandersWork();
  });

  test('a connection that never sends CONNECT is closed after mqtt.idle_timeout (1 s)', async () => {
    const t0 = Date.now();
    const c = await RawClient.open(setup.broker.mqttPort, 4);
    // A partial CONNECT does not count as CONNECT.
    c.sendBytes(Buffer.from([0x10, 0x20, 0x00]));
    await c.waitClosed(4000);
    const took = Date.now() - t0;
    assert.ok(took >= 900, `closed after ${took} ms, before the idle timeout`);
    assert.deepEqual(
      c.packets.map((p) => p.cmd),
      [],
    );
    await setup.bystandersWork();
  });
});

describe('5.0 Receive Maximum (mqtt.max_inflight = 2)', () => {
  test('CONNACK announces Receive Maximum 2', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: cid('rm'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.properties?.receiveMaximum, MAX_INFLIGHT);
    c.destroy();
  });

  test('two unacknowledged QoS 1 PUBLISHes are fine, a third in the same burst gets DISCONNECT 0x93', async () => {
    // The PUBLISHes go out in one write, so the broker parses them all in one turn, before any
    // of them can be durable and acknowledged.
    const pubs = (ids: number[]): Buffer => Buffer.concat(ids.map((messageId) => gen({ cmd: 'publish', topic: 'rm/q1', payload: Buffer.from(`p${messageId}`), qos: 1, messageId, retain: false, dup: false }, 5)));
    const c = await RawClient.connected(setup.broker.mqttPort, cid('rmq1'), 5);
    c.sendBytes(pubs([1, 2]));
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 1);
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 2);
    c.sendBytes(pubs([3, 4]));
    await c.next('puback', (p) => (p as mp.IPubackPacket).messageId === 4);
    assert.equal(c.closed, false);
    c.sendBytes(pubs([5, 6, 7]));
    await expectClosed(c, 5, 0x93);
    await setup.bystandersWork();
  });

  test('QoS 2 PUBLISHes count until PUBCOMP: a third without PUBREL gets DISCONNECT 0x93 [MQTT-3.3.4-7]', async () => {
    const c = await RawClient.connected(setup.broker.mqttPort, cid('rmq2'), 5);
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
    await setup.bystandersWork();
  });
});
