// Shared subscriptions ($share/<group>/<filter>, $queue/<filter>; MQTT 5.0 §4.8.2) with every
// dispatch strategy, redelivery when a member leaves, invalid share names, the feature switch,
// and EMQX's exclusive subscriptions ($exclusive/<filter>).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { end, Received } from '../helpers/clients';
import { RawClient } from '../helpers/raw';
import { open, Opened, uniqueTopic, waitForPayload, waitUntil } from '../helpers/util';

const clients: MqttClient[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await end(...clients.splice(0));
});

async function client(b: BrokerProcess, opts: IClientOptions = {}): Promise<Opened> {
  const o = await open(b.url, opts);
  clients.push(o.client);
  return o;
}

async function raw(b: BrokerProcess, clientId: string, pv: 4 | 5 = 5): Promise<RawClient> {
  const r = await RawClient.connected(b.mqttPort, clientId, pv);
  raws.push(r);
  return r;
}

let ids = 0;
const cid = (name: string): string => `${name}-${process.pid}-${++ids}`;
let mids = 0;

/** SUBSCRIBE over a raw connection; resolves with the SUBACK's codes (granted QoS or reason codes). */
async function rawSubscribe(r: RawClient, subscriptions: mp.ISubscription[]): Promise<number[]> {
  const messageId = (++mids % 65535) + 1;
  r.send({ cmd: 'subscribe', messageId, subscriptions });
  const ack = (await r.next('suback', (p) => (p as mp.ISubackPacket).messageId === messageId)) as mp.ISubackPacket;
  return ack.granted as number[];
}

const payloads = (msgs: Received[]): string[] => msgs.map((m) => m.payload.toString());

/** n members of one shared subscription, each also subscribed to `marker` (see drain). */
async function members(b: BrokerProcess, share: string, n: number, marker: string, opts: IClientOptions = {}): Promise<Opened[]> {
  const out: Opened[] = [];
  for (let i = 0; i < n; i++) {
    const o = await client(b, { clientId: cid(`m${i}`), ...opts });
    await o.client.subscribeAsync(share, { qos: 1 });
    await o.client.subscribeAsync(marker, { qos: 1 });
    out.push(o);
  }
  return out;
}

/**
 * Publishes to `marker` (a plain subscription every member holds) after the messages under
 * test and waits until every member has it: a session delivers in routing order, so whatever
 * a member was going to get from the earlier publishes has arrived by then.
 */
async function drain(pub: Opened, subs: Opened[], marker: string): Promise<void> {
  const tag = `drain-${++ids}`;
  await pub.client.publishAsync(marker, tag, { qos: 1 });
  await Promise.all(subs.map((s) => waitForPayload(s.inbox, tag)));
}

/** What each member got on `topic` (markers excluded). */
const got = (subs: Opened[], topic?: string): string[][] => subs.map((s) => payloads(s.inbox.messages.filter((m) => (topic ? m.topic === topic : !m.payload.toString().startsWith('drain-')))));

/** Every message exactly once across the members. */
function exactlyOnce(per: string[][], sent: string[]): void {
  const all = per.flat();
  assert.equal(all.length, sent.length, `${all.length} deliveries for ${sent.length} messages: ${JSON.stringify(per)}`);
  assert.deepEqual([...all].sort(), [...sent].sort(), 'none lost, none twice');
}

async function publishAll(pub: Opened, topic: string, n: number, prefix = 'm', qos: 0 | 1 = 1): Promise<string[]> {
  const sent: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = `${prefix}${i}`;
    sent.push(p);
    await pub.client.publishAsync(topic, p, { qos });
  }
  return sent;
}

describe('shared subscriptions (round_robin, the default)', () => {
  let b: BrokerProcess;
  before(async () => {
    b = await startBroker({ env: { TRIBUTARY_MQTT__EXCLUSIVE_SUBSCRIPTION: 'true' } });
  });
  after(async () => {
    await b?.stop();
  });

  for (const pv of [4, 5] as const) {
    test(`v${pv}: $share/g/t with 3 members: 30 QoS 1 messages, 10 each in rotation, none lost, none twice`, async () => {
      const topic = uniqueTopic('sh/rr');
      const marker = uniqueTopic('sh/marker');
      const subs = await members(b, `$share/g/${topic}`, 3, marker, { protocolVersion: pv });
      const pub = await client(b, { protocolVersion: pv });
      const sent = await publishAll(pub, topic, 30);
      await drain(pub, subs, marker);
      const per = got(subs, topic);
      exactlyOnce(per, sent);
      assert.deepEqual(per.map((p) => p.length), [10, 10, 10]);
      // Round robin: member k gets every third message, in order.
      const sets = per.map((p) => p.map((x) => Number(x.slice(1)) % 3));
      for (const s of sets) assert.equal(new Set(s).size, 1, `one residue per member: ${JSON.stringify(per)}`);
      for (const s of subs) for (const m of s.inbox.messages.filter((x) => x.topic === topic)) assert.equal(m.packet.qos, 1);
    });
  }

  test('$queue/t is $share/$queue/t: members subscribed either way form one group', async () => {
    const topic = uniqueTopic('sh/queue');
    const marker = uniqueTopic('sh/marker');
    const [a] = await members(b, `$queue/${topic}`, 1, marker, { protocolVersion: 5 });
    const [c] = await members(b, `$share/$queue/${topic}`, 1, marker);
    const [d] = await members(b, `$queue/${topic}`, 1, marker);
    const subs = [a!, c!, d!];
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 12);
    await drain(pub, subs, marker);
    const per = got(subs, topic);
    exactlyOnce(per, sent);
    assert.deepEqual(per.map((p) => p.length), [4, 4, 4]);
  });

  test('two groups on the same filter each get every message; a plain subscriber beside them gets every message too', async () => {
    const topic = uniqueTopic('sh/groups');
    const marker = uniqueTopic('sh/marker');
    const g1 = await members(b, `$share/g1/${topic}`, 2, marker);
    const g2 = await members(b, `$share/g2/${topic.split('/').slice(0, -1).join('/')}/+`, 3, marker, { protocolVersion: 5 });
    const plain = await client(b, { protocolVersion: 5 });
    await plain.client.subscribeAsync(topic, { qos: 1 });
    await plain.client.subscribeAsync(marker, { qos: 1 });
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 12);
    await drain(pub, [...g1, ...g2, plain], marker);
    exactlyOnce(got(g1, topic), sent);
    exactlyOnce(got(g2, topic), sent);
    assert.deepEqual(got([plain], topic)[0], sent, 'the plain subscriber gets all, in order');
  });

  test('a shared subscription delivers at min(message QoS, subscription QoS)', async () => {
    const topic = uniqueTopic('sh/qos');
    const s = await client(b, { protocolVersion: 5 });
    await s.client.subscribeAsync(`$share/q/${topic}`, { qos: 0 });
    const t = await client(b, { protocolVersion: 5 });
    await t.client.subscribeAsync(`$share/q2/${topic}`, { qos: 2 });
    const pub = await client(b);
    await pub.client.publishAsync(topic, 'q1', { qos: 1 });
    assert.equal((await waitForPayload(s.inbox, 'q1')).packet.qos, 0);
    assert.equal((await waitForPayload(t.inbox, 'q1')).packet.qos, 1);
  });

  test('retained messages are not sent to a new shared subscription (§4.8.2)', async () => {
    const topic = uniqueTopic('sh/retained');
    const pub = await client(b);
    await pub.client.publishAsync(topic, 'kept', { qos: 1, retain: true });
    const s = await client(b, { protocolVersion: 5 });
    // Subscription identifiers tell which subscription a message came through: the shared one
    // (1) is made first, so a retained message it wrongly got would arrive before the plain one's (2).
    await s.client.subscribeAsync(`$share/r/${topic}`, { qos: 1, properties: { subscriptionIdentifier: 1 } });
    await s.client.subscribeAsync(topic, { qos: 1, properties: { subscriptionIdentifier: 2 } });
    const viaPlain = await waitForPayload(s.inbox, 'kept');
    assert.equal(viaPlain.packet.retain, true);
    assert.equal(viaPlain.packet.properties?.subscriptionIdentifier, 2);
    assert.equal(s.inbox.messages.length, 1, `only the plain subscription got the retained message: ${JSON.stringify(s.inbox.messages.map((m) => m.packet.properties))}`);
    // A new message reaches the shared subscription (and the plain one).
    await pub.client.publishAsync(topic, 'live', { qos: 1 });
    await s.inbox.waitFor(3);
    const live = s.inbox.messages.slice(1);
    assert.deepEqual(live.map((m) => m.payload.toString()), ['live', 'live']);
    assert.deepEqual(live.map((m) => m.packet.properties?.subscriptionIdentifier).sort(), [1, 2]);
    await pub.client.publishAsync(topic, '', { qos: 1, retain: true });
  });

  for (const pv of [4, 5] as const) {
    test(`v${pv}: a QoS 1 message unacknowledged by a member that disconnects is redelivered to another member`, async () => {
      const topic = uniqueTopic('sh/redeliver');
      const share = `$share/rd/${topic}`;
      // A raw client never sends PUBACK.
      const silent = await raw(b, cid('silent'), pv);
      assert.deepEqual(await rawSubscribe(silent, [{ topic: share, qos: 1 }]), [1]);
      const other = await client(b, { protocolVersion: pv });
      await other.client.subscribeAsync(share, { qos: 1 });
      const pub = await client(b);
      const sent = await publishAll(pub, topic, 6);
      const silentGot = (): string[] => silent.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mp.IPublishPacket).payload.toString());
      await waitUntil(() => silentGot().length === 3, 'the silent member got its 3 messages');
      await other.inbox.waitFor(3);
      assert.deepEqual(payloads(other.inbox.messages), ['m1', 'm3', 'm5']);
      silent.destroy();
      // The three it never acknowledged go to the remaining member.
      await other.inbox.waitFor(6);
      exactlyOnce([payloads(other.inbox.messages)], sent);
      assert.deepEqual(payloads(other.inbox.messages).slice(3).sort(), silentGot().sort());
      // Nothing more arrives afterwards (no third copy): a later message is the next one.
      await pub.client.publishAsync(topic, 'after', { qos: 1 });
      await other.inbox.waitFor(7);
      assert.deepEqual(payloads(other.inbox.messages).slice(6), ['after']);
    });
  }

  test('a member that unsubscribes gets no more; the others share what follows', async () => {
    const topic = uniqueTopic('sh/leave');
    const marker = uniqueTopic('sh/marker');
    const subs = await members(b, `$share/lv/${topic}`, 3, marker);
    await subs[0]!.client.unsubscribeAsync(`$share/lv/${topic}`);
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 10);
    await drain(pub, subs, marker);
    const per = got(subs, topic);
    assert.deepEqual(per[0], []);
    exactlyOnce(per.slice(1), sent);
    assert.deepEqual(per.slice(1).map((p) => p.length), [5, 5]);
  });

  test('v5: No Local on a shared subscription is a Protocol Error: DISCONNECT 0x82 [MQTT-3.8.3-4]', async () => {
    const r = await raw(b, cid('nolocal'), 5);
    r.send({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: `$share/g/${uniqueTopic('sh/nl')}`, qos: 1, nl: true }] });
    await r.waitClosed();
    assert.equal(r.disconnectReason(), 0x82);
    assert.equal(r.packets.some((p) => p.cmd === 'suback'), false);
  });

  test('v5: No Local on a plain subscription is fine', async () => {
    const r = await raw(b, cid('nolocal-plain'), 5);
    assert.deepEqual(await rawSubscribe(r, [{ topic: uniqueTopic('sh/nl'), qos: 1, nl: true }]), [1]);
  });

  const INVALID = ['$share//t', '$share/g+/t', '$share/g#/t', '$share/g', '$share/g/', '$queue/', '$share/g/t/#/x', '$share/g/t+'];
  for (const pv of [4, 5] as const) {
    test(`v${pv}: invalid share names and filters get SUBACK ${pv === 5 ? '0x8F' : '0x80'}; valid ones beside them are granted`, async () => {
      const r = await raw(b, cid('invalid'), pv);
      const subs: mp.ISubscription[] = [{ topic: '$share/ok/t', qos: 1 }, ...INVALID.map((topic) => ({ topic, qos: 1 as const })), { topic: '$queue/ok', qos: 2 }];
      const codes = await rawSubscribe(r, subs);
      assert.deepEqual(codes, [1, ...INVALID.map(() => (pv === 5 ? 0x8f : 0x80)), 2]);
      assert.equal(r.closed, false);
    });
  }

  test('$exclusive/t: the first subscriber holds it, a second gets 0x97 (v5) / 0x80 (v3.1.1) until the first unsubscribes', async () => {
    const topic = uniqueTopic('sh/excl');
    const first = await raw(b, cid('excl1'), 5);
    assert.deepEqual(await rawSubscribe(first, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [1]);
    // Subscribing again from the same client is fine.
    assert.deepEqual(await rawSubscribe(first, [{ topic: `$exclusive/${topic}`, qos: 0 }]), [0]);
    const second = await raw(b, cid('excl2'), 5);
    assert.deepEqual(await rawSubscribe(second, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [0x97]);
    const v4 = await raw(b, cid('excl3'), 4);
    assert.deepEqual(await rawSubscribe(v4, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [0x80]);

    const pub = await client(b);
    await pub.client.publishAsync(topic, 'to-first', { qos: 1 });
    const m = (await first.next('publish')) as mp.IPublishPacket;
    assert.equal(m.topic, topic);
    assert.equal(m.payload.toString(), 'to-first');

    first.send({ cmd: 'unsubscribe', messageId: 99, unsubscriptions: [`$exclusive/${topic}`] });
    const unsuback = (await first.next('unsuback')) as mp.IUnsubackPacket;
    assert.deepEqual(unsuback.granted, [0]);
    assert.deepEqual(await rawSubscribe(second, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [1]);
    await pub.client.publishAsync(topic, 'to-second', { qos: 1 });
    const m2 = (await second.next('publish')) as mp.IPublishPacket;
    assert.equal(m2.payload.toString(), 'to-second');
    assert.equal(first.packets.filter((p) => p.cmd === 'publish').length, 1, 'the first no longer gets it');
  });

  test('$exclusive/t is released when its holder disconnects', async () => {
    const topic = uniqueTopic('sh/excl-dc');
    const first = await raw(b, cid('excl-dc1'), 5);
    assert.deepEqual(await rawSubscribe(first, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [1]);
    const second = await raw(b, cid('excl-dc2'), 5);
    assert.deepEqual(await rawSubscribe(second, [{ topic: `$exclusive/${topic}`, qos: 1 }]), [0x97]);
    first.destroy();
    await waitUntil(async () => (await rawSubscribe(second, [{ topic: `$exclusive/${topic}`, qos: 1 }]))[0] === 1, 'the exclusive filter is free');
  });
});

describe('shared subscription strategies', () => {
  const brokers = new Map<string, BrokerProcess>();
  const STRATEGIES = ['random', 'round_robin_per_group', 'sticky', 'hash_clientid', 'hash_topic'] as const;
  before(async () => {
    const started = await Promise.all(STRATEGIES.map((s) => startBroker({ env: { TRIBUTARY_MQTT__SHARED_SUBSCRIPTION_STRATEGY: s } })));
    STRATEGIES.forEach((s, i) => brokers.set(s, started[i]!));
  });
  after(async () => {
    await Promise.all([...brokers.values()].map((b) => b.stop()));
  });
  const broker = (s: (typeof STRATEGIES)[number]): BrokerProcess => brokers.get(s)!;

  test('random: every message exactly once, spread over the members, not in strict rotation', async () => {
    const b = broker('random');
    const topic = uniqueTopic('st/random');
    const marker = uniqueTopic('st/marker');
    const subs = await members(b, `$share/g/${topic}`, 3, marker);
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 60);
    await drain(pub, subs, marker);
    const per = got(subs, topic);
    exactlyOnce(per, sent);
    assert.ok(per.filter((p) => p.length > 0).length >= 2, `more than one member used: ${per.map((p) => p.length)}`);
    const rotation = per.every((p) => new Set(p.map((x) => Number(x.slice(1)) % 3)).size === 1);
    assert.equal(rotation, false, 'random is not round robin');
  });

  test('round_robin_per_group: each group rotates over its members', async () => {
    const b = broker('round_robin_per_group');
    const topic = uniqueTopic('st/rrpg');
    const marker = uniqueTopic('st/marker');
    const g1 = await members(b, `$share/a/${topic}`, 3, marker);
    const g2 = await members(b, `$share/b/${topic}`, 2, marker);
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 12);
    await drain(pub, [...g1, ...g2], marker);
    exactlyOnce(got(g1, topic), sent);
    exactlyOnce(got(g2, topic), sent);
    assert.deepEqual(got(g1, topic).map((p) => p.length), [4, 4, 4]);
    assert.deepEqual(got(g2, topic).map((p) => p.length), [6, 6]);
  });

  test('sticky: everything goes to one member until it leaves, then to one other member', async () => {
    const b = broker('sticky');
    const topic = uniqueTopic('st/sticky');
    const marker = uniqueTopic('st/marker');
    const subs = await members(b, `$share/g/${topic}`, 3, marker);
    const pub = await client(b);
    const sent = await publishAll(pub, topic, 15, 'a');
    await drain(pub, subs, marker);
    const per = got(subs, topic);
    exactlyOnce(per, sent);
    const holder = per.findIndex((p) => p.length > 0);
    assert.deepEqual(per[holder], sent, `one member got all: ${per.map((p) => p.length)}`);

    await subs[holder]!.client.endAsync();
    const rest = subs.filter((_, i) => i !== holder);
    const sent2 = await publishAll(pub, topic, 10, 'b');
    await drain(pub, rest, marker);
    const per2 = got(rest, topic).map((p) => p.filter((x) => x.startsWith('b')));
    exactlyOnce(per2, sent2);
    assert.ok(per2.some((p) => p.length === sent2.length), `one remaining member got all: ${per2.map((p) => p.length)}`);
  });

  test("hash_clientid: all of one publisher's messages go to the same member", async () => {
    const b = broker('hash_clientid');
    const topic = uniqueTopic('st/hcid');
    const marker = uniqueTopic('st/marker');
    const subs = await members(b, `$share/g/${topic}`, 3, marker);
    const pubs: Opened[] = [];
    for (let i = 0; i < 6; i++) pubs.push(await client(b, { clientId: cid(`pub${i}`) }));
    const sent: string[] = [];
    // Interleaved, so a rotation would spread each publisher's messages.
    for (let n = 0; n < 5; n++) {
      for (const [i, p] of pubs.entries()) {
        sent.push(`p${i}-${n}`);
        await p.client.publishAsync(topic, `p${i}-${n}`, { qos: 1 });
      }
    }
    await drain(pubs[0]!, subs, marker);
    const per = got(subs, topic);
    exactlyOnce(per, sent);
    for (let i = 0; i < pubs.length; i++) {
      const holders = per.map((p) => p.filter((x) => x.startsWith(`p${i}-`)).length).filter((c) => c > 0);
      assert.deepEqual(holders, [5], `publisher ${i}: ${JSON.stringify(per)}`);
    }
  });

  test("hash_topic: all of one topic's messages go to the same member", async () => {
    const b = broker('hash_topic');
    const root = uniqueTopic('st/htopic');
    const marker = uniqueTopic('st/marker');
    const subs = await members(b, `$share/g/${root}/+`, 3, marker);
    const pub = await client(b);
    const topics = Array.from({ length: 6 }, (_, i) => `${root}/t${i}`);
    const sent: string[] = [];
    for (let n = 0; n < 5; n++) {
      for (const [i, t] of topics.entries()) {
        sent.push(`t${i}-${n}`);
        await pub.client.publishAsync(t, `t${i}-${n}`, { qos: 1 });
      }
    }
    await drain(pub, subs, marker);
    const per = subs.map((s) => s.inbox.messages.filter((m) => m.topic.startsWith(`${root}/`)));
    exactlyOnce(per.map(payloads), sent);
    for (const t of topics) {
      const holders = per.map((msgs) => msgs.filter((m) => m.topic === t).length).filter((c) => c > 0);
      assert.deepEqual(holders, [5], `topic ${t}`);
    }
  });
});

describe('shared and exclusive subscriptions switched off', () => {
  let b: BrokerProcess;
  before(async () => {
    // exclusive_subscription is off by default.
    b = await startBroker({ env: { TRIBUTARY_MQTT__SHARED_SUBSCRIPTION: 'false' } });
  });
  after(async () => {
    await b?.stop();
  });

  test('v5: $share/ and $queue/ get 0x9E, $exclusive/ gets 0x8F, plain filters beside them are granted; CONNACK says so', async () => {
    const o = await client(b, { protocolVersion: 5 });
    assert.equal(o.connack.properties?.sharedSubscriptionAvailable, false);
    const r = await raw(b, cid('off5'), 5);
    const codes = await rawSubscribe(r, [
      { topic: '$share/g/t', qos: 1 },
      { topic: '$queue/t', qos: 1 },
      { topic: '$exclusive/t', qos: 1 },
      { topic: 't', qos: 1 },
    ]);
    assert.deepEqual(codes, [0x9e, 0x9e, 0x8f, 1]);
  });

  test('v3.1.1: they get 0x80', async () => {
    const r = await raw(b, cid('off4'), 4);
    assert.deepEqual(await rawSubscribe(r, [{ topic: '$share/g/t', qos: 1 }, { topic: '$queue/t', qos: 0 }, { topic: '$exclusive/t', qos: 0 }, { topic: 't', qos: 2 }]), [0x80, 0x80, 0x80, 2]);
  });

  test('a $share/ subscription refused with 0x9E receives nothing', async () => {
    const topic = uniqueTopic('off/none');
    const r = await raw(b, cid('off-none'), 5);
    assert.deepEqual(await rawSubscribe(r, [{ topic: `$share/g/${topic}`, qos: 1 }, { topic: `${topic}/marker`, qos: 1 }]), [0x9e, 1]);
    const pub = await client(b);
    await pub.client.publishAsync(topic, 'x', { qos: 1 });
    await pub.client.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
    await r.next('publish');
    assert.deepEqual(
      r.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mp.IPublishPacket).topic),
      [`${topic}/marker`],
    );
  });
});
