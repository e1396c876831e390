// Configuration keys no other test sets, each on a broker configured with a small value and
// observed through what a client sees on the wire (EMQX's semantics).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { RawClient, wirePayloads, wirePublish, wireSubscriber } from '../helpers/raw';
import { brokerStatus, clientTracker, uniqueTopic } from '../helpers/util';

let b: BrokerProcess;
/** The broker retains some $SYS topics of its own; they count too. */
const MAX_RETAINED = 10;
const { client, raws } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker({
    env: {
      TRIBUTARY_MQTT__RETRY_INTERVAL: '1s',
      TRIBUTARY_MQTT__MAX_AWAITING_REL: '2',
      TRIBUTARY_MQTT__WILDCARD_SUBSCRIPTION: 'false',
      TRIBUTARY_MQTT__MAX_CLIENTID_LEN: '23',
      TRIBUTARY_MQTT__MAX_TOPIC_LEVELS: '3',
      TRIBUTARY_MQTT__MAX_RETAINED_MESSAGES: String(MAX_RETAINED),
    },
  });
});
after(() => b?.stop());

let ids = 0;
const cid = (name: string): string => `${name}-${++ids}`;

async function raw(clientId: string, pv: 4 | 5 = 5, extra: Partial<mp.IConnectPacket> = {}): Promise<RawClient> {
  const c = await RawClient.connected(b.mqttPort, clientId, pv, extra);
  raws.push(c);
  return c;
}

describe('configuration keys', () => {
  test('mqtt.retry_interval = 1s: an unacknowledged QoS 1 PUBLISH to a 3.1.1 client is resent with DUP, same packet id', async () => {
    const topic = uniqueTopic('ck/retry');
    const sub = await raw(cid('retry'), 4);
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
    await sub.next('suback');
    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(topic, 'unacked', { qos: 1 });
    const first = (await sub.next('publish')) as mp.IPublishPacket;
    assert.equal(first.dup, false);
    // No PUBACK: the retry ticker resends it (the default, 30 s, would not within this wait).
    const again = (await sub.next('publish', (p) => p !== first, 10_000)) as mp.IPublishPacket;
    assert.equal(again.dup, true);
    assert.equal(again.messageId, first.messageId);
    assert.equal(again.payload.toString(), 'unacked');
  });

  test('mqtt.max_awaiting_rel = 2: a third QoS 2 PUBLISH awaiting PUBREL disconnects a 5.0 client with 0x93', async () => {
    const topic = uniqueTopic('ck/rel');
    const c = await raw(cid('rel'));
    for (const id of [1, 2]) {
      c.send({ cmd: 'publish', topic, payload: Buffer.from(String(id)), qos: 2, messageId: id, retain: false, dup: false });
      await c.next('pubrec', (p) => p.messageId === id);
    }
    c.send({ cmd: 'publish', topic, payload: Buffer.from('3'), qos: 2, messageId: 3, retain: false, dup: false });
    await c.waitClosed();
    assert.equal(c.disconnectReason(), 0x93);
    assert.equal(c.packets.filter((p) => p.cmd === 'pubrec').length, 2);
    // Released ones free their place: a new connection with PUBREL in between never hits the limit.
    const d = await raw(cid('rel-ok'));
    for (const id of [1, 2, 3, 4]) {
      d.send({ cmd: 'publish', topic, payload: Buffer.from(String(id)), qos: 2, messageId: id, retain: false, dup: false });
      await d.next('pubrec', (p) => p.messageId === id);
      d.send({ cmd: 'pubrel', messageId: id });
      await d.next('pubcomp', (p) => p.messageId === id);
    }
    assert.equal(d.closed, false);
  });

  test('mqtt.wildcard_subscription = false: CONNACK says so, wildcard filters get 0xA2 (3.1.1: 0x80), plain filters are granted', async () => {
    const c5 = await raw(cid('wild5'));
    assert.equal((c5.packets[0] as mp.IConnackPacket).properties?.wildcardSubscriptionAvailable, false);
    c5.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ck/+', qos: 1 }, { topic: 'ck/#', qos: 1 }, { topic: 'ck/plain', qos: 1 }] });
    assert.deepEqual(((await c5.next('suback')) as mp.ISubackPacket).granted, [0xa2, 0xa2, 1]);
    const c4 = await raw(cid('wild4'), 4);
    c4.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ck/+', qos: 1 }, { topic: 'ck/plain', qos: 1 }] });
    assert.deepEqual(((await c4.next('suback')) as mp.ISubackPacket).granted, [0x80, 1]);
  });

  test('mqtt.max_clientid_len = 23: a 24-byte client id is refused (5.0: CONNACK 0x85, 3.1.1: return code 2), 23 bytes are accepted', async () => {
    for (const [pv, field, code] of [[5, 'reasonCode', 0x85], [4, 'returnCode', 2]] as const) {
      const c = await RawClient.open(b.mqttPort, pv);
      raws.push(c);
      c.send({ cmd: 'connect', clientId: 'x'.repeat(24), protocolVersion: pv, protocolId: 'MQTT', clean: true, keepalive: 60 });
      const connack = (await c.next('connack')) as mp.IConnackPacket;
      assert.equal(connack[field], code, `v${pv}`);
      await c.waitClosed();
      const ok = await raw('y'.repeat(22) + String(pv), pv);
      assert.equal((ok.packets[0] as mp.IConnackPacket)[field] ?? 0, 0);
    }
  });

  test('mqtt.max_topic_levels = 3: a 4-level filter gets 0x8F, a 4-level PUBLISH disconnects with 0x90; 3 levels work', async () => {
    const c = await raw(cid('levels'));
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'ck/a/b/c', qos: 0 }, { topic: 'ck/a/b', qos: 0 }] });
    assert.deepEqual(((await c.next('suback')) as mp.ISubackPacket).granted, [0x8f, 0]);
    c.send({ cmd: 'publish', topic: 'ck/a/b', payload: Buffer.from('three'), qos: 1, messageId: 2, retain: false, dup: false });
    await c.next('puback');
    c.send({ cmd: 'publish', topic: 'ck/a/b/c', payload: Buffer.from('four'), qos: 1, messageId: 3, retain: false, dup: false });
    await c.waitClosed();
    assert.equal(c.disconnectReason(), 0x90);
  });

  test(`mqtt.max_retained_messages = ${MAX_RETAINED}: at the limit a new topic is published but not retained; replacing and clearing still work`, async () => {
    // Three levels at most on this broker (max_topic_levels).
    const root = uniqueTopic('ckret');
    const free = MAX_RETAINED - (await brokerStatus(b)).stats['retained.count']!;
    assert.ok(free >= 2, `${free} places left for the test`);
    const pub = await client({ protocolVersion: 5 });
    // Wildcards are off on this broker: the subscribers name every topic.
    const names = Array.from({ length: free + 1 }, (_, i) => `r${i}`);
    const topics = [...names, 'm'].map((n) => `${root}/${n}`);
    const live = await wireSubscriber(b.mqttPort, cid('ret-live'), topics);
    raws.push(live);
    for (const n of names) await pub.client.publishAsync(`${root}/${n}`, n, { qos: 1, retain: true });
    await wirePublish(live, names.at(-1)!);
    assert.deepEqual(wirePayloads(live), names, 'all are published');
    /** What a new subscriber gets as retained, up to a marker published after its SUBACK. */
    const retainedNow = async (): Promise<string[]> => {
      const s = await wireSubscriber(b.mqttPort, cid('ret-check'), topics);
      raws.push(s);
      const marker = `marker-${++ids}`;
      await pub.client.publishAsync(`${root}/m`, marker, { qos: 1 });
      await wirePublish(s, marker);
      return wirePayloads(s).filter((p) => !p.startsWith('marker-')).sort();
    };
    const kept = names.slice(0, free);
    assert.deepEqual(await retainedNow(), [...kept].sort(), 'the one over the limit is not retained');
    await pub.client.publishAsync(`${root}/r1`, 'r1 again', { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), kept.map((n) => (n === 'r1' ? 'r1 again' : n)).sort(), 'replacing one at the limit works');
    await pub.client.publishAsync(`${root}/r0`, '', { qos: 1, retain: true });
    const last = names.at(-1)!;
    await pub.client.publishAsync(`${root}/${last}`, `${last} now`, { qos: 1, retain: true });
    assert.deepEqual(await retainedNow(), [...kept.slice(1).map((n) => (n === 'r1' ? 'r1 again' : n)), `${last} now`].sort(), 'a cleared place is taken again');
  });
});
