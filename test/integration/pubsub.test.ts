import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions } from 'mqtt';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { Received } from '../helpers/clients';
import { metric, Opened, sleep, uniqueTopic, waitForPayload, waitForTopic, clientTracker, payloads } from '../helpers/util';

type QoS = 0 | 1 | 2;
const VERSIONS = [4, 5] as const;

let b: BrokerProcess;
const { client } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker();
});
after(async () => {
  await b?.stop();
});


const subIds = (m: Received): number[] => {
  const ids = m.packet.properties?.subscriptionIdentifier;
  return ids === undefined ? [] : ([] as number[]).concat(ids).sort((x, y) => x - y);
};

describe('publish/subscribe', () => {
  for (const pv of VERSIONS) {
    for (const qos of [0, 1, 2] as const) {
      test(`v${pv}: QoS ${qos} publish reaches a QoS 2 subscriber at QoS ${qos}`, async () => {
        const topic = uniqueTopic(`ps/qos${qos}`);
        const sub = await client({ protocolVersion: pv });
        const pub = await client({ protocolVersion: pv });
        const granted = await sub.client.subscribeAsync(topic, { qos: 2 });
        assert.equal(granted[0]?.qos, 2);
        const ack = await pub.client.publishAsync(topic, `hello ${qos}`, { qos });
        if (qos > 0) assert.ok(ack, 'QoS 1/2 publish is acknowledged');
        const [m] = await sub.inbox.waitFor(1);
        assert.equal(m!.topic, topic);
        assert.equal(m!.payload.toString(), `hello ${qos}`);
        assert.equal(m!.packet.qos, qos);
        assert.equal(m!.packet.retain, false);
        assert.equal(m!.packet.dup, false);
      });
    }

    test(`v${pv}: delivery QoS is min(publish QoS, subscription QoS), never upgraded`, async () => {
      const topic = uniqueTopic('ps/downgrade');
      const subs: Opened[] = [];
      for (const s of [0, 1, 2] as const) {
        const o = await client({ protocolVersion: pv });
        await o.client.subscribeAsync(topic, { qos: s });
        subs.push(o);
      }
      const pub = await client({ protocolVersion: pv });
      for (const p of [0, 1, 2] as const) await pub.client.publishAsync(topic, `p${p}`, { qos: p });
      for (const [s, o] of subs.entries()) {
        const msgs = await o.inbox.waitFor(3);
        const byPayload = new Map(msgs.map((m) => [m.payload.toString(), m.packet.qos]));
        assert.deepEqual(
          Object.fromEntries(byPayload),
          { p0: Math.min(0, s), p1: Math.min(1, s), p2: Math.min(2, s) },
          `subscriber at QoS ${s}`,
        );
        assert.equal(msgs.length, 3);
      }
    });
  }

  test('wildcards: + matches one level, # matches any number including the parent', async () => {
    const root = uniqueTopic('w');
    const filters = [`${root}/+/temp`, `${root}/#`, `${root}/+`, `+/+/+/temp`];
    const subs: Opened[] = [];
    for (const f of filters) {
      const o = await client({ protocolVersion: 5 });
      await o.client.subscribeAsync(f, { qos: 1 });
      subs.push(o);
    }
    const pub = await client({ protocolVersion: 4 });
    const topics = [`${root}`, `${root}/a`, `${root}/a/temp`, `${root}/a/b/temp`, `${root}/a/hum`, `${root}x/a/temp`, `other/${root}/a/temp`];
    for (const t of topics) await pub.client.publishAsync(t, t, { qos: 1 });
    // Markers: once a subscriber has its last expected one, everything before it was routed.
    const marker = `${root}/end/temp`;
    const marker2 = `${root}/end`;
    await pub.client.publishAsync(marker, 'end', { qos: 1 });
    await pub.client.publishAsync(marker2, 'end', { qos: 1 });
    const expected: Record<string, string[]> = {
      [filters[0]!]: [`${root}/a/temp`, marker],
      [filters[1]!]: [`${root}`, `${root}/a`, `${root}/a/temp`, `${root}/a/b/temp`, `${root}/a/hum`, marker, marker2],
      [filters[2]!]: [`${root}/a`, marker2],
      [filters[3]!]: [`${root}/a/temp`, `${root}x/a/temp`, marker],
    };
    for (const [i, o] of subs.entries()) {
      const want = expected[filters[i]!]!;
      await waitForTopic(o.inbox, want[want.length - 1]!);
      assert.deepEqual(o.inbox.messages.map((m) => m.topic), want, `filter ${filters[i]}`);
    }
  });

  test('$-topics are not matched by # or +/x at the first level, but by $app/#', async () => {
    const id = uniqueTopic('d').replace('/', '-');
    const all = await client({ protocolVersion: 4 });
    await all.client.subscribeAsync('#', { qos: 1 });
    const plus = await client({ protocolVersion: 5 });
    await plus.client.subscribeAsync(`+/${id}`, { qos: 1 });
    const app = await client({ protocolVersion: 5 });
    await app.client.subscribeAsync('$app/#', { qos: 1 });
    const sys = await client({ protocolVersion: 4 });
    await sys.client.subscribeAsync(`$SYS/+`, { qos: 1 });

    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(`$SYS/${id}`, 'sys', { qos: 1 });
    await pub.client.publishAsync(`$app/${id}`, 'app', { qos: 1 });
    await pub.client.publishAsync(`$app/deep/${id}`, 'app-deep', { qos: 1 });
    await pub.client.publishAsync(`m/${id}`, 'marker', { qos: 1 });

    await waitForTopic(all.inbox, `m/${id}`);
    assert.deepEqual(all.inbox.messages.filter((m) => m.topic.includes(id)).map((m) => m.topic), [`m/${id}`], '# must not match $-topics');
    await waitForTopic(plus.inbox, `m/${id}`);
    assert.deepEqual(plus.inbox.messages.map((m) => m.topic), [`m/${id}`], '+/x must not match $app/x');
    await app.inbox.waitFor(2);
    assert.deepEqual(app.inbox.messages.map((m) => m.topic), [`$app/${id}`, `$app/deep/${id}`]);
    await waitForTopic(sys.inbox, `$SYS/${id}`);
  });

  test('v3.1.1: overlapping subscriptions give one delivery at the highest QoS', async () => {
    const root = uniqueTopic('ov');
    const sub = await client({ protocolVersion: 4 });
    await sub.client.subscribeAsync(`${root}/+`, { qos: 0 });
    await sub.client.subscribeAsync(`${root}/#`, { qos: 2 });
    await sub.client.subscribeAsync(`${root}/a`, { qos: 1 });
    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(`${root}/a`, 'q2', { qos: 2 });
    await pub.client.publishAsync(`${root}/a`, 'q1', { qos: 1 });
    await pub.client.publishAsync(`${root}/a`, 'marker', { qos: 2 });
    await waitForPayload(sub.inbox, 'marker');
    const msgs = sub.inbox.messages;
    assert.deepEqual(payloads(msgs).sort(), ['marker', 'q1', 'q2']);
    assert.equal(msgs.find((m) => m.payload.toString() === 'q2')!.packet.qos, 2);
    assert.equal(msgs.find((m) => m.payload.toString() === 'q1')!.packet.qos, 1);
  });

  test('v5: overlapping subscriptions give one delivery carrying every subscription identifier', async () => {
    const root = uniqueTopic('ov5');
    const sub = await client({ protocolVersion: 5 });
    await sub.client.subscribeAsync(`${root}/+`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await sub.client.subscribeAsync(`${root}/#`, { qos: 2, properties: { subscriptionIdentifier: 300 } });
    await sub.client.subscribeAsync(`${root}/b`, { qos: 0 }); // no identifier: contributes none
    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync(`${root}/a`, 'both', { qos: 2 });
    await pub.client.publishAsync(`${root}/x/y`, 'hash-only', { qos: 2 });
    await pub.client.publishAsync(`${root}/b`, 'three', { qos: 2 });
    await pub.client.publishAsync(`${root}/a`, 'marker', { qos: 2 });
    await waitForPayload(sub.inbox, 'marker');
    const msgs = sub.inbox.messages;
    assert.deepEqual(payloads(msgs), ['both', 'hash-only', 'three', 'marker'], 'exactly one delivery per message');
    assert.deepEqual(subIds(msgs[0]!), [7, 300]);
    assert.equal(msgs[0]!.packet.qos, 2);
    assert.deepEqual(subIds(msgs[1]!), [300]);
    assert.deepEqual(subIds(msgs[2]!), [7, 300]);
  });

  for (const pv of VERSIONS) {
    test(`v${pv}: unsubscribe stops delivery`, async () => {
      const root = uniqueTopic('un');
      const sub = await client({ protocolVersion: pv });
      await sub.client.subscribeAsync([`${root}/a`, `${root}/marker`], { qos: 1 });
      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(`${root}/a`, 'before', { qos: 1 });
      await sub.inbox.waitFor(1);
      const unsuback = (await sub.client.unsubscribeAsync([`${root}/a`, `${root}/never`])) as { granted?: number[] } | undefined;
      // 5.0: one reason code per filter, 0x11 for a filter that had no subscription [MQTT-3.11.3-1].
      if (pv === 5) assert.deepEqual(unsuback?.granted, [0x00, 0x11]);
      await pub.client.publishAsync(`${root}/a`, 'after', { qos: 1 });
      await pub.client.publishAsync(`${root}/marker`, 'marker', { qos: 1 });
      await waitForPayload(sub.inbox, 'marker');
      assert.deepEqual(payloads(sub.inbox.messages), ['before', 'marker']);
    });
  }

  test('v3.1.1 publisher → v5 subscriber: 500 QoS 1 messages arrive in order', async () => {
    const topic = uniqueTopic('ord');
    const sub = await client({ protocolVersion: 5 });
    await sub.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client({ protocolVersion: 4 });
    await Promise.all(Array.from({ length: 500 }, (_, i) => pub.client.publishAsync(topic, String(i), { qos: 1 })));
    const msgs = await sub.inbox.waitFor(500, 20_000);
    assert.deepEqual(payloads(msgs), Array.from({ length: 500 }, (_, i) => String(i)));
    assert.ok(msgs.every((m) => m.packet.qos === 1));
  });

  test('v5 publisher → v3.1.1 subscriber: 500 QoS 1 messages arrive in order', async () => {
    const topic = uniqueTopic('ord5');
    const sub = await client({ protocolVersion: 4 });
    await sub.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    // Stay within the broker's Receive Maximum (CONNACK), which mqtt.js does not enforce itself.
    const window = Math.min(20, pub.connack.properties?.receiveMaximum ?? 20);
    for (let i = 0; i < 500; i += window) {
      await Promise.all(Array.from({ length: Math.min(window, 500 - i) }, (_, j) => pub.client.publishAsync(topic, String(i + j), { qos: 1 })));
    }
    const msgs = await sub.inbox.waitFor(500, 20_000);
    assert.deepEqual(payloads(msgs), Array.from({ length: 500 }, (_, i) => String(i)));
  });

  test('v5: user properties, content type, response topic, correlation data and payload format pass through', async () => {
    const topic = uniqueTopic('props');
    const sub5 = await client({ protocolVersion: 5 });
    await sub5.client.subscribeAsync(topic, { qos: 1 });
    const sub4 = await client({ protocolVersion: 4 });
    await sub4.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    const correlationData = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    await pub.client.publishAsync(topic, '{"t":21.5}', {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        responseTopic: 'reply/here',
        correlationData,
        userProperties: { site: 'berlin', tag: ['a', 'b'] },
      },
    });
    const [m] = await sub5.inbox.waitFor(1);
    const p = m!.packet.properties ?? {};
    assert.equal(m!.payload.toString(), '{"t":21.5}');
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, 'reply/here');
    assert.ok(Buffer.isBuffer(p.correlationData) && p.correlationData.equals(correlationData), 'correlation data bytes');
    assert.equal(p.payloadFormatIndicator, true);
    assert.deepEqual({ ...p.userProperties }, { site: 'berlin', tag: ['a', 'b'] });
    // A 3.1.1 subscriber gets the same message, without properties.
    const [m4] = await sub4.inbox.waitFor(1);
    assert.equal(m4!.payload.toString(), '{"t":21.5}');
  });

  test('v5: No Local suppresses the client’s own messages on that subscription only', async () => {
    const topic = uniqueTopic('nl');
    const a = await client({ protocolVersion: 5 });
    await a.client.subscribeAsync(topic, { qos: 1, nl: true });
    const other = await client({ protocolVersion: 5 });
    await other.client.subscribeAsync(topic, { qos: 1 });
    await a.client.publishAsync(topic, 'from-a', { qos: 1 });
    await other.client.publishAsync(topic, 'from-other', { qos: 1 });
    await waitForPayload(a.inbox, 'from-other');
    assert.deepEqual(payloads(a.inbox.messages), ['from-other'], 'a must not receive its own message');
    // No Local is per subscription: `other` subscribed without it and sees both.
    const both = await other.inbox.waitFor(2);
    assert.deepEqual(payloads(both), ['from-a', 'from-other']);
  });

  test('v3.1.1: a client receives its own messages (No Local does not exist)', async () => {
    const topic = uniqueTopic('own');
    const a = await client({ protocolVersion: 4 });
    await a.client.subscribeAsync(topic, { qos: 1 });
    await a.client.publishAsync(topic, 'mine', { qos: 1 });
    const [m] = await a.inbox.waitFor(1);
    assert.equal(m!.payload.toString(), 'mine');
  });

  test('v5: message expiry — expired messages are not delivered to a late persistent session; the remaining interval is sent', async () => {
    const topic = uniqueTopic('exp');
    const clientId = `exp-${process.pid}`;
    const opts: IClientOptions = { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await client(opts);
    await first.client.subscribeAsync(topic, { qos: 1 });
    await first.client.endAsync();

    const pub = await client({ protocolVersion: 5 });
    const expiredBefore = await metric(b, 'messages.dropped.expired');
    await pub.client.publishAsync(topic, 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    const longSentAt = Date.now();
    await pub.client.publishAsync(topic, 'long', { qos: 1, properties: { messageExpiryInterval: 60 } });
    await pub.client.publishAsync(topic, 'forever', { qos: 1 });
    // The passing of time is what is under test (no event marks an expiry before delivery): let the 1 s message expire.
    await sleep(1600);

    const again = await client(opts);
    assert.equal(again.connack.sessionPresent, true);
    const msgs = await again.inbox.waitFor(2);
    assert.deepEqual(payloads(msgs.slice(0, 2)), ['long', 'forever'], 'the expired message is not delivered');
    const left = msgs[0]!.packet.properties?.messageExpiryInterval;
    // At least 1.6 s passed; at most what the test measured (no upper bound on how slow the box is).
    const waited = Math.ceil((Date.now() - longSentAt) / 1000);
    assert.ok(left !== undefined && left <= 59 && left >= 60 - waited - 1, `remaining expiry sent, got ${left} after ${waited} s`);
    assert.equal(msgs[1]!.packet.properties?.messageExpiryInterval, undefined, 'no expiry on a message without one');
    assert.equal((await metric(b, 'messages.dropped.expired')) - expiredBefore, 1);

    // Online delivery carries the interval too (nothing has elapsed yet).
    const onlineSentAt = Date.now();
    await pub.client.publishAsync(topic, 'online', { qos: 1, properties: { messageExpiryInterval: 30 } });
    const m = (await again.inbox.waitFor(3))[2]!;
    const took = Math.ceil((Date.now() - onlineSentAt) / 1000);
    assert.equal(m.payload.toString(), 'online');
    const online = m.packet.properties?.messageExpiryInterval;
    assert.ok(online !== undefined && online <= 30 && online >= 30 - took - 1, `expiry on online delivery, got ${online} after ${took} s`);
    assert.equal(again.inbox.messages.length, 3);
  });
});
