import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions, IDisconnectPacket } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { end } from '../helpers/clients';
import { RawClient } from '../helpers/raw';
import { racingConnects, takeoverWithInflight } from '../helpers/takeover';
import { brokerStatus, metric, once, uniqueTopic, waitForPayload, waitUntil, clientTracker, payloads } from '../helpers/util';

const VERSIONS = [4, 5] as const;
const MAX_MQUEUE_LEN = 5;

const dataDir = tempDir();
let b: BrokerProcess;
const { client, raws } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker({ dataDir, env: { TRIBUTARY_MQTT__MAX_MQUEUE_LEN: String(MAX_MQUEUE_LEN) } });
});
after(async () => {
  await b?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});


/** Options of a persistent session: 3.1.1 clean=false, 5.0 Clean Start 0 + Session Expiry. */
function persistent(pv: 4 | 5, clientId: string, expiry = 60): IClientOptions {
  return pv === 5 ? { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: expiry } } : { protocolVersion: 4, clientId, clean: false };
}

let ids = 0;
const cid = (name: string): string => `${name}-${process.pid}-${++ids}`;

describe('sessions', () => {
  for (const pv of VERSIONS) {
    test(`v${pv}: a clean session's subscriptions are discarded when it ends`, async () => {
      const id = cid('clean');
      const topic = uniqueTopic('s/clean');
      const first = await client({ protocolVersion: pv, clientId: id, clean: true });
      assert.equal(first.connack.sessionPresent, false);
      await first.client.subscribeAsync(topic, { qos: 1 });
      await first.client.endAsync();

      const second = await client({ protocolVersion: pv, clientId: id, clean: true });
      assert.equal(second.connack.sessionPresent, false);
      await second.client.subscribeAsync(`${topic}/marker`, { qos: 1 });
      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(topic, 'old-subscription', { qos: 1 });
      await pub.client.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
      await waitForPayload(second.inbox, 'marker');
      assert.deepEqual(payloads(second.inbox.messages), ['marker']);
    });

    test(`v${pv}: connecting with a clean start discards an existing persistent session`, async () => {
      const id = cid('cleanstart');
      const topic = uniqueTopic('s/cleanstart');
      const first = await client(persistent(pv, id));
      await first.client.subscribeAsync(topic, { qos: 1 });
      await first.client.endAsync();
      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(topic, 'queued-for-old-session', { qos: 1 });

      const second = await client({ ...persistent(pv, id), clean: true });
      assert.equal(second.connack.sessionPresent, false);
      await second.client.subscribeAsync(`${topic}/marker`, { qos: 1 });
      await pub.client.publishAsync(topic, 'after', { qos: 1 });
      await pub.client.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
      await waitForPayload(second.inbox, 'marker');
      assert.deepEqual(payloads(second.inbox.messages), ['marker'], 'neither the queued message nor the old subscription survive');
    });

    test(`v${pv}: a persistent session keeps its subscriptions and gets QoS 1 and 2 messages published while offline`, async () => {
      const id = cid('persist');
      const topic = uniqueTopic('s/persist');
      const first = await client(persistent(pv, id));
      assert.equal(first.connack.sessionPresent, false);
      await first.client.subscribeAsync(topic, { qos: 2 });
      await first.client.endAsync();

      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(topic, 'offline-q1', { qos: 1 });
      await pub.client.publishAsync(topic, 'offline-q2', { qos: 2 });

      const again = await client(persistent(pv, id));
      assert.equal(again.connack.sessionPresent, true);
      const msgs = await again.inbox.waitFor(2);
      const byPayload = Object.fromEntries(msgs.map((m) => [m.payload.toString(), m.packet.qos]));
      assert.deepEqual(byPayload, { 'offline-q1': 1, 'offline-q2': 2 });

      // The subscription is still there: no SUBSCRIBE on this connection, yet live messages arrive.
      await pub.client.publishAsync(topic, 'online', { qos: 1 });
      await waitForPayload(again.inbox, 'online');
      assert.equal(again.inbox.messages.length, 3);
    });

    test(`v${pv}: QoS 0 messages are queued for an offline persistent session (mqueue_store_qos0)`, async () => {
      const id = cid('qos0');
      const topic = uniqueTopic('s/qos0');
      const first = await client(persistent(pv, id));
      await first.client.subscribeAsync(topic, { qos: 1 });
      await first.client.endAsync();

      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(topic, 'zero', { qos: 0 });
      // Acknowledged after the QoS 0 message from the same connection was routed.
      await pub.client.publishAsync(topic, 'one', { qos: 1 });

      const again = await client(persistent(pv, id));
      assert.equal(again.connack.sessionPresent, true);
      const msgs = await again.inbox.waitFor(2);
      assert.deepEqual(payloads(msgs), ['zero', 'one']);
      assert.equal(msgs[0]!.packet.qos, 0);
      assert.equal(msgs[1]!.packet.qos, 1);
    });
  }

  test(`the offline queue keeps the newest ${MAX_MQUEUE_LEN} messages and counts the drops (max_mqueue_len)`, async () => {
    const id = cid('bounded');
    const topic = uniqueTopic('s/bounded');
    const first = await client(persistent(4, id));
    await first.client.subscribeAsync(topic, { qos: 1 });
    await first.client.endAsync();

    const droppedBefore = await metric(b, 'messages.dropped.queue_full');
    const pub = await client({ protocolVersion: 4 });
    for (let i = 0; i < 8; i++) await pub.client.publishAsync(topic, `m${i}`, { qos: 1 });
    assert.equal((await metric(b, 'messages.dropped.queue_full')) - droppedBefore, 3);

    const again = await client(persistent(4, id));
    assert.equal(again.connack.sessionPresent, true);
    await again.inbox.waitFor(5);
    await pub.client.publishAsync(topic, 'marker', { qos: 1 });
    await waitForPayload(again.inbox, 'marker');
    assert.deepEqual(payloads(again.inbox.messages), ['m3', 'm4', 'm5', 'm6', 'm7', 'marker'], 'the oldest three were dropped');
  });

  test('v5: session takeover — the old connection gets DISCONNECT 0x8E, the new one inherits the session', async () => {
    const id = cid('takeover5');
    const topic = uniqueTopic('s/takeover5');
    const old = await client(persistent(5, id));
    await old.client.subscribeAsync(topic, { qos: 1 });
    const disconnect = once<IDisconnectPacket>(old.client, 'disconnect');
    const closed = once(old.client, 'close');

    const next = await client(persistent(5, id));
    assert.equal(next.connack.sessionPresent, true);
    assert.equal((await disconnect).reasonCode, 0x8e, 'Session taken over');
    await closed;

    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync(topic, 'to-new-owner', { qos: 1 });
    const [m] = await next.inbox.waitFor(1);
    assert.equal(m!.payload.toString(), 'to-new-owner');
    assert.equal(old.inbox.messages.length, 0);
  });

  test('v3.1.1: session takeover closes the old connection; the new one inherits the subscriptions', async () => {
    const id = cid('takeover4');
    const topic = uniqueTopic('s/takeover4');
    const old = await client(persistent(4, id));
    await old.client.subscribeAsync(topic, { qos: 1 });
    const closed = once(old.client, 'close');

    const next = await client(persistent(4, id));
    assert.equal(next.connack.sessionPresent, true);
    await closed;

    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(topic, 'to-new-owner', { qos: 1 });
    const [m] = await next.inbox.waitFor(1);
    assert.equal(m!.payload.toString(), 'to-new-owner');

    // A takeover with clean session=1 starts afresh.
    const closed2 = once(next.client, 'close');
    const fresh = await client({ protocolVersion: 4, clientId: id, clean: true });
    assert.equal(fresh.connack.sessionPresent, false);
    await closed2;
  });

  test('v5: a session with Session Expiry Interval 1 is gone about a second after the connection closes', async () => {
    const id = cid('expiry');
    const topic = uniqueTopic('s/expiry');
    const first = await client(persistent(5, id, 1));
    await first.client.subscribeAsync(topic, { qos: 1 });
    const sessions = async (): Promise<number> => (await brokerStatus(b)).stats['sessions.count'] ?? -1;
    await first.client.endAsync();
    const closedAt = Date.now();
    const withIt = await sessions();

    // The session outlives its connection for a while, then expires.
    await waitUntil(async () => (await sessions()) === withIt - 1, 'the session to expire', 4000);
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= 800, `expired after ${elapsed} ms, expected about 1 s`);

    const again = await client(persistent(5, id, 1));
    assert.equal(again.connack.sessionPresent, false);
    await waitUntil(async () => (await sessions()) === withIt, 'the new session to be counted', 2000);
    const pub = await client({ protocolVersion: 5 });
    await again.client.subscribeAsync(`${topic}/marker`, { qos: 1 });
    await pub.client.publishAsync(topic, 'old-subscription', { qos: 1 });
    await pub.client.publishAsync(`${topic}/marker`, 'marker', { qos: 1 });
    await waitForPayload(again.inbox, 'marker');
    assert.deepEqual(payloads(again.inbox.messages), ['marker'], 'the expired session’s subscription is gone');
  });

  test('v5: a session is still present when the client reconnects within its expiry interval', async () => {
    const id = cid('within');
    const first = await client(persistent(5, id, 30));
    await first.client.subscribeAsync(uniqueTopic('s/within'), { qos: 1 });
    await first.client.endAsync();
    const again = await client(persistent(5, id, 30));
    assert.equal(again.connack.sessionPresent, true);
  });

  for (const pv of VERSIONS) {
    test(`v${pv}: an unacknowledged QoS 1 message is sent again with DUP and the same packet id after reconnecting`, async () => {
      const id = cid('dup');
      const topic = uniqueTopic('s/dup');
      const extra: Partial<mp.IConnectPacket> = pv === 5 ? { clean: false, properties: { sessionExpiryInterval: 60 } } : { clean: false };
      const raw = await RawClient.connected(b.mqttPort, id, pv, extra);
      raws.push(raw);
      raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] } as mp.ISubscribePacket);
      await raw.next('suback');

      const pub = await client({ protocolVersion: 4 });
      await pub.client.publishAsync(topic, 'unacked', { qos: 1 });
      const first = (await raw.next('publish')) as mp.IPublishPacket;
      assert.equal(first.qos, 1);
      assert.equal(first.dup, false);
      raw.destroy(); // no PUBACK

      const again = await RawClient.connected(b.mqttPort, id, pv, extra);
      raws.push(again);
      const connack = (await again.next('connack')) as mp.IConnackPacket;
      assert.equal(connack.sessionPresent, true);
      const resent = (await again.next('publish')) as mp.IPublishPacket;
      assert.equal(resent.payload.toString(), 'unacked');
      assert.equal(resent.dup, true, 'DUP is set on a redelivery [MQTT-3.3.1-1]');
      assert.equal(resent.messageId, first.messageId, 'the same packet id');
      assert.equal(resent.qos, 1);

      // Once acknowledged it is not sent again.
      again.send({ cmd: 'puback', messageId: resent.messageId! } as mp.IPubackPacket);
      again.destroy();
      const third = await RawClient.connected(b.mqttPort, id, pv, extra);
      raws.push(third);
      await pub.client.publishAsync(topic, 'next', { qos: 1 });
      const p = (await third.next('publish')) as mp.IPublishPacket;
      assert.equal(p.payload.toString(), 'next');
      assert.equal(p.dup, false);
    });
  }

  test('v5: a takeover with QoS 1 messages in flight: the old connection gets 0x8E, the new one every unacknowledged message again (DUP, same ids), each once', async () => {
    const pub = await client({ protocolVersion: 5 });
    raws.push(await takeoverWithInflight(b.mqttPort, b.mqttPort, pub, cid('takeover-inflight'), uniqueTopic('s/takeover')));
  });

  test('v5: two CONNECTs racing for one client id: one holds the session, the other is closed, messages reach the holder once', async () => {
    const pub = await client({ protocolVersion: 5 });
    for (let i = 0; i < 5; i++) raws.push(await racingConnects(b.mqttPort, b.mqttPort, pub, cid('race'), uniqueTopic('s/race')));
  });

  test('v3.1.1: after PUBREC the broker resends PUBREL (not PUBLISH) on reconnect', async () => {
    const id = cid('pubrel');
    const topic = uniqueTopic('s/pubrel');
    const raw = await RawClient.connected(b.mqttPort, id, 4, { clean: false });
    raws.push(raw);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] } as mp.ISubscribePacket);
    await raw.next('suback');
    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(topic, 'exactly-once', { qos: 2 });
    const p = (await raw.next('publish')) as mp.IPublishPacket;
    assert.equal(p.qos, 2);
    raw.send({ cmd: 'pubrec', messageId: p.messageId! } as mp.IPubrecPacket);
    await raw.next('pubrel');
    raw.destroy(); // no PUBCOMP

    const again = await RawClient.connected(b.mqttPort, id, 4, { clean: false });
    raws.push(again);
    const pubrel = (await again.next('pubrel')) as mp.IPubrelPacket;
    assert.equal(pubrel.messageId, p.messageId);
    again.send({ cmd: 'pubcomp', messageId: p.messageId! } as mp.IPubcompPacket);
    // A marker published now reaches the session after anything resent on reconnect.
    await pub.client.publishAsync(topic, 'marker', { qos: 1 });
    await again.next('publish', (x) => (x as mp.IPublishPacket).payload.toString() === 'marker');
    assert.deepEqual(
      again.packets.filter((x): x is mp.IPublishPacket => x.cmd === 'publish').map((x) => x.payload.toString()),
      ['marker'],
      'the message itself is not sent again',
    );
  });
});

// Restarts its broker: its own broker and data directory, so no other test depends on the order.
describe('sessions across a restart', () => {
  const restartDir = tempDir();
  let r: BrokerProcess;
  const start = (): Promise<BrokerProcess> => startBroker({ dataDir: restartDir, env: { TRIBUTARY_MQTT__MAX_MQUEUE_LEN: String(MAX_MQUEUE_LEN) } });
  const { client, clients } = clientTracker(() => r.url);
  before(async () => {
    r = await start();
  });
  after(async () => {
    await r?.stop();
    rmSync(restartDir, { recursive: true, force: true });
  });

  for (const pv of VERSIONS) {
    test(`v${pv}: a persistent session and its offline messages survive a broker restart`, async () => {
      const id = cid('restart');
      const topic = uniqueTopic('s/restart');
      const first = await client(persistent(pv, id, 300));
      await first.client.subscribeAsync(topic, { qos: 2 });
      await first.client.endAsync();
      const pub = await client({ protocolVersion: 4 });
      await pub.client.publishAsync(topic, 'before-restart-1', { qos: 1 });
      await pub.client.publishAsync(topic, 'before-restart-2', { qos: 2 });
      await end(...clients.splice(0));

      assert.equal(await r.stop(), 0, 'clean shutdown');
      r = await start();

      const again = await client(persistent(pv, id, 300));
      assert.equal(again.connack.sessionPresent, true);
      const msgs = await again.inbox.waitFor(2);
      assert.deepEqual(msgs.map((m) => [m.payload.toString(), m.packet.qos]).sort(), [['before-restart-1', 1], ['before-restart-2', 2]]);
      const pub2 = await client({ protocolVersion: 4 });
      await pub2.client.publishAsync(topic, 'after-restart', { qos: 1 });
      await waitForPayload(again.inbox, 'after-restart');
      assert.equal(again.inbox.messages.length, 3, 'nothing delivered twice');
    });
  }
});
