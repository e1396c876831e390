import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { end, Received } from '../helpers/clients';
import { Opened, uniqueTopic, waitForPayload, waitForTopic, clientTracker, payloads } from '../helpers/util';

const VERSIONS = [4, 5] as const;

const dataDir = tempDir();
let b: BrokerProcess;
const { client, clients } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker({ dataDir });
});
after(async () => {
  await b?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});


const flags = (msgs: Received[]): [string, boolean][] => msgs.map((m) => [m.payload.toString(), m.packet.retain]);

/**
 * Subscribes, then publishes a non-retained marker to `markerTopic` (which the filter must
 * match) and returns everything that arrived before the marker: the retained messages sent
 * for this subscription, if any.
 */
async function retainedOnSubscribe(o: Opened, pub: Opened, filter: string, markerTopic: string, subOpts: Parameters<MqttClient['subscribeAsync']>[1] = { qos: 1 }): Promise<Received[]> {
  const start = o.inbox.messages.length;
  await o.client.subscribeAsync(filter, subOpts);
  const marker = `marker-${Math.random()}`;
  await pub.client.publishAsync(markerTopic, marker, { qos: 1 });
  await waitForPayload(o.inbox, marker);
  const got = o.inbox.messages.slice(start);
  const i = got.findIndex((m) => m.payload.toString() === marker);
  return got.slice(0, i);
}

describe('retained messages', () => {
  for (const pv of VERSIONS) {
    test(`v${pv}: delivered on subscribe with RETAIN set, replaced by a newer one, cleared by an empty payload`, async () => {
      const topic = uniqueTopic('r/basic');
      const pub = await client({ protocolVersion: pv });
      await pub.client.publishAsync(topic, 'v1', { qos: 1, retain: true });

      const a = await client({ protocolVersion: pv });
      assert.deepEqual(flags(await retainedOnSubscribe(a, pub, topic, topic)), [['v1', true]]);

      await pub.client.publishAsync(topic, 'v2', { qos: 1, retain: true });
      // An established subscription gets the live message with RETAIN 0 [MQTT-3.3.1-9] (5.0: Retain As Published 0).
      const live = await waitForPayload(a.inbox, 'v2');
      assert.equal(live.packet.retain, false);

      const c = await client({ protocolVersion: pv });
      assert.deepEqual(flags(await retainedOnSubscribe(c, pub, topic, topic)), [['v2', true]], 'only the newest is kept');

      await pub.client.publishAsync(topic, '', { qos: 1, retain: true });
      const d = await client({ protocolVersion: pv });
      assert.deepEqual(flags(await retainedOnSubscribe(d, pub, topic, topic)), [], 'an empty retained payload clears it [MQTT-3.3.1-10]');
    });
  }

  test('the retained message is delivered at min(stored QoS, subscription QoS)', async () => {
    const root = uniqueTopic('r/qos');
    const pub = await client({ protocolVersion: 4 });
    await pub.client.publishAsync(`${root}/q2`, 'q2', { qos: 2, retain: true });
    await pub.client.publishAsync(`${root}/q0`, 'q0', { qos: 0, retain: true });
    await pub.client.publishAsync(`${root}/sync`, 'sync', { qos: 1 }); // the QoS 0 one is stored before this is acknowledged
    for (const subQos of [0, 1, 2] as const) {
      const s = await client({ protocolVersion: 5 });
      const got = await retainedOnSubscribe(s, pub, `${root}/+`, `${root}/marker`, { qos: subQos });
      const byPayload = Object.fromEntries(got.map((m) => [m.payload.toString(), m.packet.qos]));
      assert.deepEqual(byPayload, { q2: Math.min(2, subQos), q0: 0 }, `subscription QoS ${subQos}`);
    }
  });

  test('a wildcard subscription receives every matching retained message; $-topics only through $-filters', async () => {
    const id = uniqueTopic('rw').replace('/', '-');
    const pub = await client({ protocolVersion: 4 });
    const topics = [`${id}/a`, `${id}/b/c`, `${id}/b/d`, `${id}/b/c/e`, `${id}x/a`, `$ret/${id}`];
    for (const t of topics) await pub.client.publishAsync(t, t, { qos: 1, retain: true });

    const s = await client({ protocolVersion: 5 });
    const all = await retainedOnSubscribe(s, pub, `${id}/#`, `${id}/marker`);
    assert.deepEqual(payloads(all).sort(), [`${id}/a`, `${id}/b/c`, `${id}/b/c/e`, `${id}/b/d`]);
    assert.ok(all.every((m) => m.packet.retain));

    const s2 = await client({ protocolVersion: 4 });
    const plus = await retainedOnSubscribe(s2, pub, `${id}/+/c`, `${id}/m/c`);
    assert.deepEqual(payloads(plus), [`${id}/b/c`]);

    const s3 = await client({ protocolVersion: 4 });
    const everything = await retainedOnSubscribe(s3, pub, '#', `${id}/marker`);
    assert.ok(everything.some((m) => m.topic === `${id}/b/d`), '# gets ordinary retained topics');
    assert.deepEqual(everything.filter((m) => m.topic.startsWith('$')).map((m) => m.topic), [], '# must not match $-topics [MQTT-4.7.2-1]');

    const s4 = await client({ protocolVersion: 4 });
    const dollar = await retainedOnSubscribe(s4, pub, '$ret/#', `$ret/${id}-marker`);
    assert.deepEqual(payloads(dollar), [`$ret/${id}`]);

    for (const t of topics) await pub.client.publishAsync(t, '', { qos: 1, retain: true });
  });

  test('v5: Retain Handling 0 sends on every subscribe, 1 only on a new subscription, 2 never', async () => {
    const topic = uniqueTopic('r/rh');
    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync(topic, 'kept', { qos: 1, retain: true });

    const rh0 = await client({ protocolVersion: 5 });
    assert.deepEqual(payloads(await retainedOnSubscribe(rh0, pub, topic, topic, { qos: 1, rh: 0 })), ['kept']);
    assert.deepEqual(payloads(await retainedOnSubscribe(rh0, pub, topic, topic, { qos: 1, rh: 0 })), ['kept'], 'rh 0: again on a repeated subscribe');

    const rh1 = await client({ protocolVersion: 5 });
    assert.deepEqual(payloads(await retainedOnSubscribe(rh1, pub, topic, topic, { qos: 1, rh: 1 })), ['kept'], 'rh 1: new subscription');
    assert.deepEqual(payloads(await retainedOnSubscribe(rh1, pub, topic, topic, { qos: 1, rh: 1 })), [], 'rh 1: not for an existing subscription [MQTT-3.3.1-10]');

    const rh2 = await client({ protocolVersion: 5 });
    assert.deepEqual(payloads(await retainedOnSubscribe(rh2, pub, topic, topic, { qos: 1, rh: 2 })), [], 'rh 2: never [MQTT-3.3.1-11]');

    await pub.client.publishAsync(topic, '', { qos: 1, retain: true });
  });

  test('v5: Retain As Published keeps the RETAIN flag on live messages; otherwise it is cleared', async () => {
    const topic = uniqueTopic('r/rap');
    const rap = await client({ protocolVersion: 5 });
    await rap.client.subscribeAsync(topic, { qos: 1, rap: true });
    const norap = await client({ protocolVersion: 5 });
    await norap.client.subscribeAsync(topic, { qos: 1, rap: false });
    const v4 = await client({ protocolVersion: 4 });
    await v4.client.subscribeAsync(topic, { qos: 1 });

    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync(topic, 'retained', { qos: 1, retain: true });
    await pub.client.publishAsync(topic, 'plain', { qos: 1 });
    for (const o of [rap, norap, v4]) await o.inbox.waitFor(2);
    assert.deepEqual(flags(rap.inbox.messages), [['retained', true], ['plain', false]], 'rap=1 [MQTT-3.3.1-13]');
    assert.deepEqual(flags(norap.inbox.messages), [['retained', false], ['plain', false]], 'rap=0 [MQTT-3.3.1-12]');
    assert.deepEqual(flags(v4.inbox.messages), [['retained', false], ['plain', false]]);

    await pub.client.publishAsync(topic, '', { qos: 1, retain: true });
  });

  test('v5: a retained message keeps its properties', async () => {
    const topic = uniqueTopic('r/props');
    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync(topic, '{}', { qos: 1, retain: true, properties: { contentType: 'application/json', userProperties: { k: 'v' } } });
    const s = await client({ protocolVersion: 5 });
    const [m] = await retainedOnSubscribe(s, pub, topic, topic);
    assert.equal(m?.packet.properties?.contentType, 'application/json');
    assert.deepEqual({ ...m?.packet.properties?.userProperties }, { k: 'v' });
    await pub.client.publishAsync(topic, '', { qos: 1, retain: true });
  });
});

// Restarts its broker: its own broker and data directory, so no other test depends on the order.
describe('retained messages across a restart', () => {
  const restartDir = tempDir();
  let r: BrokerProcess;
  const { client: restartClient, clients: restartClients } = clientTracker(() => r.url);
  before(async () => {
    r = await startBroker({ dataDir: restartDir });
  });
  after(async () => {
    await r?.stop();
    rmSync(restartDir, { recursive: true, force: true });
  });

  test('retained messages survive a broker restart (and so does a clear)', async () => {
    const root = uniqueTopic('r/restart');
    const pub = await restartClient({ protocolVersion: 4 });
    await pub.client.publishAsync(`${root}/kept`, 'old', { qos: 1, retain: true });
    await pub.client.publishAsync(`${root}/kept`, 'survivor', { qos: 1, retain: true });
    await pub.client.publishAsync(`${root}/cleared`, 'gone', { qos: 1, retain: true });
    await pub.client.publishAsync(`${root}/cleared`, '', { qos: 1, retain: true });
    await end(...restartClients.splice(0));

    assert.equal(await r.stop(), 0, 'clean shutdown');
    r = await startBroker({ dataDir: restartDir });

    const pub2 = await restartClient({ protocolVersion: 4 });
    const s = await restartClient({ protocolVersion: 5 });
    const got = await retainedOnSubscribe(s, pub2, `${root}/#`, `${root}/marker`, { qos: 2 });
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.toString(), m.packet.retain, m.packet.qos]),
      [[`${root}/kept`, 'survivor', true, 1]],
    );
    await waitForTopic(s.inbox, `${root}/marker`);
  });
});
