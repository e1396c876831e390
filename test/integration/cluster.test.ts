import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import * as mp from 'mqtt-packet';
import { racingConnects, takeoverWithInflight } from '../helpers/takeover';
import { publishQos2ResentAfterReconnect, RawClient, wirePayloads, wirePublish, wireSubscriber } from '../helpers/raw';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { Inbox } from '../helpers/clients';
import { clientTracker, open, Opened, payloads, uniqueTopic, waitForPayload, waitUntil } from '../helpers/util';

// Tributary scaled out over a real Kafka: a router, a retain service and two gateways, each its
// own process (`tributary router|retain|gateway`), sharing one topic prefix.
const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `c${process.pid}x${Date.now()}.`;
const LEASE_MS = 3000;
const env = (name: string): Record<string, string> => ({
  TRIBUTARY_NODE__NAME: name,
  TRIBUTARY_BACKBONE__TYPE: 'kafka',
  TRIBUTARY_BACKBONE__KAFKA__BROKERS: kafka,
  TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
  // A killed router's partitions move to its restarted successor after this.
  TRIBUTARY_BACKBONE__KAFKA__SESSION_TIMEOUT: '6s',
  TRIBUTARY_CLUSTER__LEASE: String(LEASE_MS),
  TRIBUTARY_LISTENERS__SSL__DEFAULT__ENABLE: 'false',
  TRIBUTARY_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
  TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '0',
  TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '0',
});
const start = (command: string, name: string): Promise<BrokerProcess> => startBroker({ command, env: env(name) });

let router: BrokerProcess;
let retain: BrokerProcess;
let a: BrokerProcess;
let b: BrokerProcess;
const extra: BrokerProcess[] = [];

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  router = await start('router', 'router');
  retain = await start('retain', 'retain');
  [a, b] = await Promise.all([start('gateway', 'gw-a'), start('gateway', 'gw-b')]);
});
after(async () => {
  await Promise.all([a, b, ...extra].map((p) => p?.stop()));
  await Promise.all([router?.stop(), retain?.stop()]);
});

const onA = clientTracker(() => a.url);
const onB = clientTracker(() => b.url);

/** Subscribes and waits for SUBACK: scaled out, SUBACK means the router routes with it. */
async function subscribe(o: Opened, filter: string, qos: 0 | 1 | 2): Promise<void> {
  const granted = await o.client.subscribeAsync(filter, { qos });
  assert.equal(granted[0]?.qos, qos);
}

/** Publishes in bursts below the server's Receive Maximum (32; mqtt.js 5 does not enforce it). */
async function publishAll(client: MqttClient, topic: string, list: string[], qos: 1 | 2): Promise<void> {
  for (let i = 0; i < list.length; i += 25) await Promise.all(list.slice(i, i + 25).map((p) => client.publishAsync(topic, p, { qos })));
}

/** Produces a record to the commands topic with a plain Kafka producer, as a backend would. */
async function command(mqttTopic: string, value: string): Promise<void> {
  const producer = new Kafka({ brokers: [kafka], clientId: 'plain-producer', logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic: `${prefix}commands`, messages: [{ value, headers: { 'mqtt-topic': mqttTopic, 'mqtt-qos': '1' } }] });
  } finally {
    await producer.disconnect();
  }
}

function ids(inbox: Inbox, topicPrefix: string): string[] {
  return inbox.messages.filter((m) => m.topic.startsWith(topicPrefix)).map((m) => m.payload.toString());
}

describe('two gateways and a router', () => {
  it('runs kafkajs with its produce-batching patch applied in every service (no "loaded before" warning)', () => {
    for (const p of [router, retain, a, b]) {
      assert.ok(p.logs.some((l) => l.msg === 'tributary started'));
      const warned = p.logs.filter((l) => String(l.msg).includes('kafkajs loaded before its produce-batching fix'));
      assert.deepEqual(warned, [], 'kafkajs ran unpatched');
    }
  });

  it('carries QoS 0, 1 and 2 from a publisher on gateway A to a subscriber on gateway B, wildcards included', async () => {
    const t = uniqueTopic('cl');
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, `${t}/+/x`, 2);
    const pub = await onA.client({ protocolVersion: 5 });
    for (const qos of [0, 1, 2] as const) await pub.client.publishAsync(`${t}/q${qos}/x`, `m${qos}`, { qos });
    await pub.client.publishAsync(`${t}/q1/y`, 'not matching', { qos: 1 });
    const got = await sub.inbox.waitFor(3);
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.packet.qos]).sort(), [
      [`${t}/q0/x`, 'm0', 0],
      [`${t}/q1/x`, 'm1', 1],
      [`${t}/q2/x`, 'm2', 2],
    ]);
  });

  it('delivers 200 QoS 2 messages across gateways exactly once, in order', async () => {
    const t = uniqueTopic('cl-q2');
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, `${t}/#`, 2);
    const pub = await onA.client({ protocolVersion: 5 });
    const sent = Array.from({ length: 200 }, (_, i) => String(i));
    await publishAll(pub.client, `${t}/n`, sent, 2);
    // A marker behind them on the same topic: a duplicate would arrive before it.
    await pub.client.publishAsync(`${t}/n`, 'marker', { qos: 2 });
    await waitForPayload(sub.inbox, 'marker');
    assert.deepEqual(payloads(sub.inbox.messages), [...sent, 'marker']);
  });

  it('QoS 2 exactly once on the wire across gateways, the publisher resending its PUBLISH with DUP after reconnecting to the other gateway', async () => {
    const t = uniqueTopic('cl-q2-wire');
    // Raw subscriber on B: every PUBLISH packet is counted, repeated packet ids included.
    const sub = await wireSubscriber(b.mqttPort, `cl-q2w-sub-${process.pid}`, t);
    onB.raws.push(sub);
    const pub = await publishQos2ResentAfterReconnect(a.mqttPort, () => b.mqttPort, `cl-q2w-pub-${process.pid}`, t, 'once', 'marker');
    onB.raws.push(pub);
    await wirePublish(sub, 'marker');
    assert.deepEqual(wirePayloads(sub), ['once', 'marker']);
  });

  it('shares one $share group between members on both gateways, each message to one member', async () => {
    const t = uniqueTopic('cl-share');
    const m1 = await onA.client({ protocolVersion: 5 });
    const m2 = await onB.client({ protocolVersion: 5 });
    await subscribe(m1, `$share/g/${t}/#`, 1);
    await subscribe(m2, `$share/g/${t}/#`, 1);
    const pub = await onA.client({ protocolVersion: 5 });
    const sent = Array.from({ length: 40 }, (_, i) => String(i));
    await publishAll(pub.client, `${t}/job`, sent, 1);
    await waitUntil(() => m1.inbox.messages.length + m2.inbox.messages.length >= 40, '40 shared messages', 10_000);
    const all = [...payloads(m1.inbox.messages), ...payloads(m2.inbox.messages)];
    assert.deepEqual(all.sort((x, y) => Number(x) - Number(y)), sent, 'every message once, to one member');
    assert.ok(m1.inbox.messages.length > 0 && m2.inbox.messages.length > 0, `both members got messages (${m1.inbox.messages.length}/${m2.inbox.messages.length})`);
  });

  it('serves a retained message published on gateway A to a subscriber on gateway B', async () => {
    const t = uniqueTopic('cl-retained');
    const pub = await onA.client({ protocolVersion: 5 });
    await pub.client.publishAsync(t, 'kept', { qos: 1, retain: true });
    // The retain service writes it to the compacted topic; gateway B follows that topic.
    await waitUntil(async () => {
      const sub = await onB.client({ protocolVersion: 5 });
      await subscribe(sub, t, 1);
      return sub.inbox.waitFor(1, 500).then((m) => m[0]?.payload.toString() === 'kept', () => false);
    }, 'the retained message on gateway B', 10_000);
  });

  it("delivers a plain Kafka producer's command to a subscriber on either gateway", async () => {
    const t = uniqueTopic('cl-cmd');
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, t, 1);
    await command(t, 'reboot');
    const [m] = await sub.inbox.waitFor(1, 20_000);
    assert.equal(m!.payload.toString(), 'reboot');
    // A second command behind it: whichever gateway published the first one publishes this one
    // after it, so a repeat of the first by that gateway would be counted by now.
    await command(t, 'marker');
    await waitForPayload(sub.inbox, 'marker', 20_000);
    assert.deepEqual(payloads(sub.inbox.messages), ['reboot', 'marker'], 'published once, by one of the gateways');
  });

  it('takes a session over across gateways: the old connection gets DISCONNECT 0x8E', async () => {
    const clientId = `cl-takeover-${process.pid}`;
    const first = await onA.client({ protocolVersion: 5, clientId });
    const kicked = new Promise<number | undefined>((resolve) => first.client.once('disconnect', (p) => resolve(p.reasonCode)));
    const second = await onB.client({ protocolVersion: 5, clientId });
    assert.equal(await kicked, 0x8e);
    assert.ok(second.client.connected);
  });

  it('takes a session over across gateways with QoS 1 messages in flight: each unacknowledged message again on the new gateway (DUP, same ids), once', async () => {
    const pub = await onA.client({ protocolVersion: 5 });
    onB.raws.push(await takeoverWithInflight(a.mqttPort, b.mqttPort, pub, `cl-inflight-${process.pid}`, uniqueTopic('cl-inflight')));
  });

  it('two CONNECTs racing for one client id on the two gateways: one holds the session, the other is taken over or refused with 0x88, messages reach the holder once', async () => {
    const pub = await onA.client({ protocolVersion: 5 });
    onB.raws.push(await racingConnects(a.mqttPort, b.mqttPort, pub, `cl-race-${process.pid}`, uniqueTopic('cl-race'), true));
  });

  it('takes a session over on the same gateway: the new connection keeps being routed to', async () => {
    const t = uniqueTopic('cl-local-takeover');
    const clientId = `cl-local-${process.pid}`;
    const opts = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await onA.client(opts);
    await subscribe(first, t, 1);
    const kicked = new Promise<number | undefined>((resolve) => first.client.once('disconnect', (p) => resolve(p.reasonCode)));
    const second = await onA.client(opts);
    assert.equal(await kicked, 0x8e);
    assert.equal(second.connack.sessionPresent, true);
    const pub = await onB.client({ protocolVersion: 5 });
    await pub.client.publishAsync(t, 'after takeover', { qos: 1 });
    await waitForPayload(second.inbox, 'after takeover');
  });

  it('cancels a delayed will when the client reconnects to another gateway in time, and publishes it otherwise', async () => {
    const t = uniqueTopic('cl-will-delay');
    const watcher = await onB.client({ protocolVersion: 5 });
    await subscribe(watcher, t, 1);
    const clientId = `cl-will-${process.pid}`;
    const opts = {
      protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 60 },
      will: { topic: t, payload: Buffer.from('offline'), qos: 1 as const, retain: false, properties: { willDelayInterval: 2 } },
    };
    const first = await onA.client(opts);
    first.client.end(true); // no DISCONNECT: the will applies after its delay
    const back = await onB.client(opts);
    assert.equal(back.connack.sessionPresent, true);
    // The same will delay, started later, on the same gateway: once this control will arrived the
    // first one would have been published too.
    const control = await onA.client({ ...opts, clientId: `${clientId}-control`, will: { ...opts.will, payload: Buffer.from('control') } });
    control.client.end(true);
    await waitForPayload(watcher.inbox, 'control', 15_000);
    assert.deepEqual(payloads(watcher.inbox.messages), ['control'], 'the reconnect within the will delay cancelled the will');
    back.client.end(true);
    // Now nobody comes back: the router publishes it once the delay elapsed.
    await waitForPayload(watcher.inbox, 'offline', 10_000);
    assert.deepEqual(payloads(watcher.inbox.messages), ['control', 'offline']);
  });

  it('resumes a persistent session on the other gateway with what was published meanwhile', async () => {
    const t = uniqueTopic('cl-persist');
    const clientId = `cl-persist-${process.pid}`;
    const opts = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 300 } };
    const first = await onA.client(opts);
    await subscribe(first, `${t}/#`, 1);
    await first.client.endAsync();
    const pub = await onB.client({ protocolVersion: 5 });
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(`${t}/${i}`, String(i), { qos: 1 });
    const again = await onB.client(opts);
    assert.equal(again.connack.sessionPresent, true);
    await again.inbox.waitFor(5);
    assert.deepEqual(payloads(again.inbox.messages), ['0', '1', '2', '3', '4']);
  });
});

describe('two gateways and a router, more', () => {
  it('resumes 20 persistent sessions at once on the other gateway, each with everything it missed', async () => {
    const t = uniqueTopic('cl-many');
    const opts = (i: number) => ({ protocolVersion: 5 as const, clientId: `cl-many-${process.pid}-${i}`, clean: false, properties: { sessionExpiryInterval: 300 } });
    for (let i = 0; i < 20; i++) {
      const o = await onA.client(opts(i));
      await subscribe(o, `${t}/#`, 1);
      await o.client.endAsync();
    }
    const pub = await onA.client({ protocolVersion: 5 });
    const sent = Array.from({ length: 50 }, (_, i) => String(i));
    await publishAll(pub.client, `${t}/m`, sent, 1);
    const back = await Promise.all(Array.from({ length: 20 }, (_, i) => onB.client(opts(i))));
    for (const o of back) {
      assert.equal(o.connack.sessionPresent, true);
      await o.inbox.waitFor(50);
      assert.deepEqual(payloads(o.inbox.messages), sent);
    }
  });

  it('handles packets sent right behind CONNECT, before the session is open, in order after CONNACK', async () => {
    const t = uniqueTopic('cl-pipelined');
    const raw = await RawClient.open(b.mqttPort, 4);
    onB.raws.push(raw);
    const v4 = { protocolVersion: 4 } as const;
    // One write: CONNECT (a persistent session: opening it waits for the sessions table), SUBSCRIBE, PUBLISH.
    raw.sendBytes(Buffer.concat([
      mp.generate({ cmd: 'connect', clientId: `cl-pipe-${process.pid}`, protocolVersion: 4, protocolId: 'MQTT', clean: false, keepalive: 60 } as mp.IConnectPacket, v4),
      mp.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: t, qos: 1 }] } as mp.ISubscribePacket, v4),
      mp.generate({ cmd: 'publish', messageId: 2, topic: t, payload: Buffer.from('self'), qos: 1, retain: false, dup: false } as mp.IPublishPacket, v4),
    ]));
    await raw.next('connack');
    await raw.next('suback');
    await raw.next('puback');
    const got = await raw.next('publish', undefined, 10_000);
    assert.equal((got as mp.IPublishPacket).payload.toString(), 'self');
    assert.deepEqual(raw.packets.slice(0, 3).map((p) => p.cmd), ['connack', 'suback', 'puback'], 'replies in the order of the requests');
  });

  it('publishes a $delayed message once, when due, to a subscriber on the other gateway', async () => {
    const t = uniqueTopic('cl-delayed');
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, t, 1);
    const pub = await onA.client({ protocolVersion: 5 });
    const sentAt = Date.now();
    await pub.client.publishAsync(`$delayed/1/${t}`, 'later', { qos: 1 });
    const [m] = await sub.inbox.waitFor(1, 10_000);
    assert.equal(m!.payload.toString(), 'later');
    assert.ok(Date.now() - sentAt >= 900, 'not before its delay');
    // A second delayed message with the same delay, due after it: a repeat of the first would come before it.
    await pub.client.publishAsync(`$delayed/1/${t}`, 'marker', { qos: 1 });
    await waitForPayload(sub.inbox, 'marker', 10_000);
    assert.deepEqual(payloads(sub.inbox.messages), ['later', 'marker'], 'published by the retain service only, once');
  });
});

describe('failures', () => {
  it('kill -9 of a gateway: its offline subscriber gets all 1,000 QoS 1 messages on the other gateway, and its connected clients’ wills are published', async () => {
    const c = await start('gateway', 'gw-c');
    extra.push(c);
    const t = uniqueTopic('cl-kill');
    const clientId = `cl-kill-${process.pid}`;
    const opts = { protocolVersion: 5 as const, clientId, clean: false, properties: { sessionExpiryInterval: 600 } };
    const offline = await open(c.url, opts);
    await subscribe(offline, `${t}/#`, 1);
    await offline.client.endAsync();

    // And one connected when the gateway dies: its session is released and resumes elsewhere.
    const connectedOpts = { ...opts, clientId: `${clientId}-c` };
    const connected = await open(c.url, connectedOpts);
    await subscribe(connected, `${t}/#`, 1);
    connected.client.on('error', () => undefined);

    const willWatcher = await onA.client({ protocolVersion: 5 });
    await subscribe(willWatcher, `${t}-will`, 1);
    const doomed = await open(c.url, { protocolVersion: 5, clientId: `${clientId}-w`, will: { topic: `${t}-will`, payload: Buffer.from('gone'), qos: 1, retain: true } });
    doomed.client.on('error', () => undefined);
    await c.kill9();
    doomed.client.end(true);
    connected.client.end(true);

    const pub = await onA.client({ protocolVersion: 5 });
    const sent = Array.from({ length: 1000 }, (_, i) => String(i));
    await publishAll(pub.client, `${t}/m`, sent, 1);
    // The lease (3 s here) lapses and the router publishes the will, retained as it asked.
    await waitForPayload(willWatcher.inbox, 'gone', 20_000);
    await waitUntil(async () => {
      const late = await onB.client({ protocolVersion: 5 });
      await subscribe(late, `${t}-will`, 1);
      return late.inbox.waitFor(1, 500).then((m) => m[0]?.payload.toString() === 'gone' && m[0].packet.retain, () => false);
    }, 'the retained will for a later subscriber', 10_000);

    const resumed = await onB.client(opts);
    assert.equal(resumed.connack.sessionPresent, true);
    await resumed.inbox.waitFor(1000, 30_000);
    const got = ids(resumed.inbox, `${t}/`);
    assert.equal(new Set(got).size, 1000, 'every message arrived');
    assert.deepEqual(got.slice(0, 1000), sent, 'in order');

    const resumedToo = await onA.client(connectedOpts);
    assert.equal(resumedToo.connack.sessionPresent, true, 'the session of the client connected at the kill is available');
    await resumedToo.inbox.waitFor(1000, 30_000);
    assert.deepEqual(ids(resumedToo.inbox, `${t}/`).slice(0, 1000), sent);
  });

  it('kill -9 of the router while traffic flows: after its restart delivery resumes, nothing acknowledged is lost, nothing is duplicated', async () => {
    const t = uniqueTopic('cl-router');
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, `${t}/#`, 1);
    const sub2 = await onA.client({ protocolVersion: 5 });
    await subscribe(sub2, `${t}/#`, 2);
    const m1 = await onA.client({ protocolVersion: 5 });
    const m2 = await onB.client({ protocolVersion: 5 });
    await subscribe(m1, `$share/r/${t}/#`, 1);
    await subscribe(m2, `$share/r/${t}/#`, 1);
    const pub = await onA.client({ protocolVersion: 5 });
    const acked: string[] = [];
    let stop = false;
    const publishing = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        await pub.client.publishAsync(`${t}/m`, String(i), { qos: 2 });
        acked.push(String(i));
      }
    })();
    await waitUntil(() => sub.inbox.messages.length >= 50, 'traffic flowing before the kill', 10_000);
    await router.kill9();
    const atKill = acked.length;
    await waitUntil(() => acked.length >= atKill + 100, 'publishes acknowledged while the router is down', 10_000);
    router = await start('router', 'router');
    const atRestart = acked.length;
    await waitUntil(() => sub.inbox.messages.length > atRestart, 'delivery to resume after the restart', 30_000);
    stop = true;
    await publishing;
    const total = acked.length;
    const shared = (): string[] => [...ids(m1.inbox, `${t}/`), ...ids(m2.inbox, `${t}/`)];
    await waitUntil(
      () => new Set(ids(sub.inbox, `${t}/`)).size >= total && new Set(ids(sub2.inbox, `${t}/`)).size >= total && new Set(shared()).size >= total,
      `all ${total} acknowledged messages at every subscriber`,
      30_000,
    );
    // Already delivered messages the restarted router routes again are dropped by offset.
    assert.deepEqual(ids(sub.inbox, `${t}/`), acked, 'QoS 1 subscriber: all, once, in order');
    assert.deepEqual(ids(sub2.inbox, `${t}/`), acked, 'QoS 2 subscriber: exactly once, in order');
    assert.ok(sub2.inbox.messages.every((m) => m.packet.qos === 2));
    assert.deepEqual(shared().sort((x, y) => Number(x) - Number(y)), acked, '$share group: each message to one member, once');
  });

  it('keeps retained messages across a restart of every service', async () => {
    const t = uniqueTopic('cl-retained-restart');
    const pub = await onA.client({ protocolVersion: 5 });
    await pub.client.publishAsync(t, 'survives', { qos: 1, retain: true });
    await pub.client.endAsync();
    // Once the retain service stored it (seen on the other gateway), stop everything.
    await waitUntil(async () => {
      const probe = await onB.client({ protocolVersion: 5 });
      await subscribe(probe, t, 1);
      return probe.inbox.waitFor(1, 500).then(() => true, () => false);
    }, 'the retained message stored', 10_000);
    await Promise.all([a.stop(), b.stop(), router.stop(), retain.stop()]);
    router = await start('router', 'router');
    retain = await start('retain', 'retain');
    [a, b] = await Promise.all([start('gateway', 'gw-a'), start('gateway', 'gw-b')]);
    const sub = await onB.client({ protocolVersion: 5 });
    await subscribe(sub, t, 1);
    const [m] = await sub.inbox.waitFor(1);
    assert.equal(m!.payload.toString(), 'survives');
    assert.equal(m!.packet.retain, true);
  });
});

