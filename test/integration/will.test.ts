import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { RawClient } from '../helpers/raw';
import { connectionsSettle, metric, once, Opened, sleep, uniqueTopic, waitForPayload, waitUntil, clientTracker, payloads } from '../helpers/util';

const VERSIONS = [4, 5] as const;

let b: BrokerProcess;
const { client, raws } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker();
});
after(async () => {
  await b?.stop();
});


let ids = 0;
const cid = (name: string): string => `${name}-${process.pid}-${++ids}`;

/** A subscriber on `topic` (QoS 2) plus a publisher for markers. */
async function watcher(topic: string): Promise<{ sub: Opened; pub: Opened }> {
  const sub = await client({ protocolVersion: 5 });
  await sub.client.subscribeAsync(topic, { qos: 2 });
  const pub = await client({ protocolVersion: 4 });
  return { sub, pub };
}

/** Publishes a marker on `topic` and returns what the subscriber received before it. */
async function beforeMarker(w: { sub: Opened; pub: Opened }, topic: string): Promise<string[]> {
  const marker = `marker-${Math.random()}`;
  await w.pub.client.publishAsync(topic, marker, { qos: 1 });
  await waitForPayload(w.sub.inbox, marker);
  const got = payloads(w.sub.inbox.messages);
  return got.slice(0, got.indexOf(marker));
}

/**
 * Resolves once a will delay of `delaySeconds` that started now has passed, observed as an event:
 * a control client with that will delay (and a longer session) drops its connection and its will
 * ('control') arrives at the watcher. Wills whose delay started earlier are due no later.
 */
async function willDelayPassed(w: { sub: Opened }, topic: string, delaySeconds: number): Promise<void> {
  const before = await connections();
  const control = await client({
    protocolVersion: 5,
    clientId: cid('control'),
    clean: false,
    properties: { sessionExpiryInterval: delaySeconds + 10 },
    will: { topic, payload: Buffer.from('control'), qos: 1, retain: false, properties: { willDelayInterval: delaySeconds } },
  });
  control.client.stream.destroy();
  await connectionsSettle(b, before);
  await waitForPayload(w.sub.inbox, 'control', delaySeconds * 1000 + 10_000);
}

/** The current number of open MQTT connections, once it stopped changing. */
const connections = (): Promise<number> => metric(b, 'connections.count');

describe('will messages', () => {
  for (const pv of VERSIONS) {
    test(`v${pv}: the will is published when the socket is destroyed without DISCONNECT`, async () => {
      const topic = uniqueTopic('will/abrupt');
      const w = await watcher(topic);
      const dying = await client({ protocolVersion: pv, clientId: cid('abrupt'), will: { topic, payload: Buffer.from(`gone-v${pv}`), qos: 1, retain: false } });
      dying.client.stream.destroy();
      const m = await waitForPayload(w.sub.inbox, `gone-v${pv}`);
      assert.equal(m.topic, topic);
      assert.equal(m.packet.qos, 1);
    });

    test(`v${pv}: no will after a normal DISCONNECT`, async () => {
      const topic = uniqueTopic('will/normal');
      const w = await watcher(topic);
      const c = await client({ protocolVersion: pv, clientId: cid('normal'), will: { topic, payload: Buffer.from('must-not-appear'), qos: 1, retain: false } });
      await c.client.endAsync(); // resolves once the broker closed the connection after DISCONNECT
      assert.deepEqual(await beforeMarker(w, topic), []);
    });
  }

  test('v3.1.1: keep-alive timeout publishes the will (1 s keep-alive, no PINGREQ)', async () => {
    const topic = uniqueTopic('will/ka4');
    const w = await watcher(topic);
    const started = Date.now();
    const raw = await RawClient.connected(b.mqttPort, cid('ka4'), 4, { keepalive: 1, will: { topic, payload: Buffer.from('timed-out'), qos: 1, retain: false } });
    raws.push(raw);
    await waitForPayload(w.sub.inbox, 'timed-out', 3500);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1400, `will after ${elapsed} ms: the broker waits 1.5 × keep-alive`);
    await raw.waitClosed(1000);
    assert.equal(raw.disconnectReason(), undefined, '3.1.1 has no server DISCONNECT');
  });

  test('v5: keep-alive timeout sends DISCONNECT 0x8D and publishes the will', async () => {
    const topic = uniqueTopic('will/ka5');
    const w = await watcher(topic);
    const started = Date.now();
    const raw = await RawClient.connected(b.mqttPort, cid('ka5'), 5, { keepalive: 1, will: { topic, payload: Buffer.from('timed-out-5'), qos: 1, retain: false } });
    raws.push(raw);
    const d = (await raw.next('disconnect', () => true, 3500)) as mp.IDisconnectPacket;
    assert.equal(d.reasonCode, 0x8d, 'Keep Alive timeout');
    await waitForPayload(w.sub.inbox, 'timed-out-5', 1000);
    assert.ok(Date.now() - started >= 1400);
    await raw.waitClosed(1000);
  });

  test('v3.1.1: a client that sends PINGREQ in time is not disconnected', async () => {
    const topic = uniqueTopic('will/alive');
    const w = await watcher(topic);
    const raw = await RawClient.connected(b.mqttPort, cid('alive'), 4, { keepalive: 1, will: { topic, payload: Buffer.from('should-not-fire'), qos: 1, retain: false } });
    raws.push(raw);
    for (let i = 0; i < 4; i++) {
      await sleep(700); // under test: activity within keep-alive keeps the connection
      raw.send({ cmd: 'pingreq' });
      await waitUntil(() => raw.packets.filter((x) => x.cmd === 'pingresp').length === i + 1, 'PINGRESP', 1000);
    }
    assert.equal(raw.closed, false);
    assert.deepEqual(await beforeMarker(w, topic), []);
  });

  test('v5: DISCONNECT with reason 0x04 publishes the will', async () => {
    const topic = uniqueTopic('will/0x04');
    const w = await watcher(topic);
    const c = await client({ protocolVersion: 5, clientId: cid('rc4'), will: { topic, payload: Buffer.from('with-will'), qos: 1, retain: false } });
    await c.client.endAsync(false, { reasonCode: 0x04 });
    const m = await waitForPayload(w.sub.inbox, 'with-will');
    assert.equal(m.topic, topic);
  });

  test('will QoS and retain are honoured: a retained will reaches a later subscriber', async () => {
    const topic = uniqueTopic('will/retain');
    const w = await watcher(topic);
    const c = await client({ protocolVersion: 4, clientId: cid('ret'), will: { topic, payload: Buffer.from('retained-will'), qos: 2, retain: true } });
    c.client.stream.destroy();
    const live = await waitForPayload(w.sub.inbox, 'retained-will');
    assert.equal(live.packet.qos, 2);
    assert.equal(live.packet.retain, false, 'live delivery to an existing subscription has RETAIN 0');

    for (const subQos of [1, 2] as const) {
      const late = await client({ protocolVersion: 4 });
      await late.client.subscribeAsync(topic, { qos: subQos });
      const [m] = await late.inbox.waitFor(1);
      assert.equal(m!.payload.toString(), 'retained-will');
      assert.equal(m!.packet.retain, true);
      assert.equal(m!.packet.qos, subQos);
    }
    await w.pub.client.publishAsync(topic, '', { qos: 1, retain: true });
  });

  test('will QoS 0 is delivered at QoS 0 to a QoS 2 subscriber', async () => {
    const topic = uniqueTopic('will/qos0');
    const w = await watcher(topic);
    const c = await client({ protocolVersion: 5, clientId: cid('q0'), will: { topic, payload: Buffer.from('q0-will'), qos: 0, retain: false } });
    c.client.stream.destroy();
    const m = await waitForPayload(w.sub.inbox, 'q0-will');
    assert.equal(m.packet.qos, 0);
  });

  test('v5: will properties (user properties, content type, response topic, correlation data) are honoured', async () => {
    const topic = uniqueTopic('will/props');
    const w = await watcher(topic);
    const c = await client({
      protocolVersion: 5,
      clientId: cid('props'),
      will: {
        topic,
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: false,
        properties: {
          contentType: 'application/json',
          responseTopic: 'will/reply',
          correlationData: Buffer.from('corr-1'),
          payloadFormatIndicator: true,
          userProperties: { device: 'd-17', site: ['a', 'b'] },
        },
      },
    });
    c.client.stream.destroy();
    const m = await waitForPayload(w.sub.inbox, '{"state":"offline"}');
    const p = m.packet.properties ?? {};
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, 'will/reply');
    assert.equal(p.correlationData?.toString(), 'corr-1');
    assert.equal(p.payloadFormatIndicator, true);
    assert.deepEqual({ ...p.userProperties }, { device: 'd-17', site: ['a', 'b'] });
  });

  test('v5: a delayed will is published after its delay when the client does not come back', async () => {
    const topic = uniqueTopic('will/delay-fires');
    const w = await watcher(topic);
    const c = await client({
      protocolVersion: 5,
      clientId: cid('delay1'),
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: { topic, payload: Buffer.from('delayed'), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    });
    const closedAt = Date.now();
    c.client.stream.destroy();
    await waitForPayload(w.sub.inbox, 'delayed', 4000);
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= 900, `published after ${elapsed} ms, the delay is 1 s`);
  });

  test('v5: a will delay longer than the session expiry fires when the session ends', async () => {
    const topic = uniqueTopic('will/delay-expiry');
    const w = await watcher(topic);
    const c = await client({
      protocolVersion: 5,
      clientId: cid('delay-exp'),
      clean: false,
      properties: { sessionExpiryInterval: 1 },
      will: { topic, payload: Buffer.from('session-ended'), qos: 1, retain: false, properties: { willDelayInterval: 30 } },
    });
    const closedAt = Date.now();
    c.client.stream.destroy();
    // Long before the 30 s will delay: the session's end (expiry 1 s) publishes it [MQTT-3.1.3-9].
    await waitForPayload(w.sub.inbox, 'session-ended', 10_000);
    const elapsed = Date.now() - closedAt;
    assert.ok(elapsed >= 900, `published after ${elapsed} ms: min(will delay, session expiry) = 1 s [MQTT-3.1.3-9]`);
  });

  test('v5: the will is not published when the client reconnects within the will delay', async () => {
    const topic = uniqueTopic('will/delay-cancel');
    const w = await watcher(topic);
    const id = cid('delay2');
    const opts: IClientOptions = {
      protocolVersion: 5,
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: { topic, payload: Buffer.from('must-not-fire'), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
    };
    const before = await connections();
    const c = await client(opts);
    c.client.stream.destroy();
    await connectionsSettle(b, before); // the broker saw the connection end: the will is pending
    const again = await client({ ...opts, will: undefined });
    assert.equal(again.connack.sessionPresent, true);
    await willDelayPassed(w, topic, 2); // under test: the will delay passes
    assert.deepEqual(await beforeMarker(w, topic), ['control']);
  });

  test('v5: a session takeover within the will delay does not publish the old connection’s will', async () => {
    const topic = uniqueTopic('will/takeover');
    const w = await watcher(topic);
    const id = cid('takeover');
    const opts: IClientOptions = {
      protocolVersion: 5,
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 10 },
      will: { topic, payload: Buffer.from('taken-over'), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
    };
    const old = await client(opts);
    const kicked = once<mp.IDisconnectPacket>(old.client, 'disconnect');
    const again = await client({ ...opts, will: undefined });
    assert.equal(again.connack.sessionPresent, true);
    assert.equal((await kicked).reasonCode, 0x8e);
    await willDelayPassed(w, topic, 2); // under test: the will delay passes
    // A new connection for the client id was opened before the delay elapsed [MQTT-3.1.2-8], [MQTT-3.1.3-9].
    assert.deepEqual(await beforeMarker(w, topic), ['control']);
  });

  test('v5: after a takeover the will of the new connection still works', async () => {
    const topic = uniqueTopic('will/takeover-new');
    const w = await watcher(topic);
    const id = cid('takeover-new');
    const old = await client({ protocolVersion: 5, clientId: id, will: { topic, payload: Buffer.from('old-will'), qos: 1, retain: false } });
    const closed = once(old.client, 'close');
    const next = await client({ protocolVersion: 5, clientId: id, will: { topic, payload: Buffer.from('new-will'), qos: 1, retain: false } });
    await closed;
    next.client.stream.destroy();
    await waitForPayload(w.sub.inbox, 'new-will');
    // The old connection had no will delay, so its will was published when it was closed.
    assert.deepEqual(payloads(w.sub.inbox.messages), ['old-will', 'new-will']);
  });
});
