// Durability across restarts of the real process, on one data directory: a clean SIGTERM stop
// and a kill -9 crash. Retained messages, persistent sessions (3.1.1 clean session = 0, 5.0 with
// a session expiry) and their subscriptions, queued QoS 1/2 messages (QoS 2 exactly once), and
// every QoS 1 message acknowledged to a publisher that was streaming when the process was killed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { IClientOptions, MqttClient } from 'mqtt';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { end, Inbox } from '../helpers/clients';
import { open } from '../helpers/util';
import { publishQos2ResentAfterReconnect, wirePayloads, wirePublish, wireSubscriber } from '../helpers/raw';

const dataDir = tempDir();
let broker: BrokerProcess;
const noop = (): void => undefined;

/** Every start uses the same data directory. Queues are made large enough that the drop policy
 * (mqtt.max_mqueue_len, oldest dropped first) never explains a missing message here. */
const start = (): Promise<BrokerProcess> => startBroker({ dataDir, env: { TRIBUTARY_MQTT__MAX_MQUEUE_LEN: '100000' } });

before(async () => {
  broker = await start();
});

after(async () => {
  if (broker && broker.proc.exitCode === null && broker.proc.signalCode === null) await broker.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

type How = 'SIGTERM' | 'kill -9';

/** Stops the broker the given way and starts it again on the same data directory. */
async function restart(how: How): Promise<void> {
  if (how === 'SIGTERM') assert.equal(await broker.stop(), 0, 'SIGTERM exit code');
  else await broker.kill9();
  broker = await start();
}

/** Every payload in `want` has arrived in `inbox` (duplicates allowed), within timeoutMs. */
async function waitForAll(inbox: Inbox, want: Iterable<string>, timeoutMs: number, also: Inbox[] = []): Promise<void> {
  const missing = new Set(want);
  const seen = (): void => {
    for (const box of [inbox, ...also]) for (const m of box.messages) missing.delete(m.payload.toString());
  };
  const deadline = Date.now() + timeoutMs;
  for (seen(); missing.size > 0; seen()) {
    const left = deadline - Date.now();
    if (left <= 0) {
      const list = [...missing];
      throw new Error(`${list.length} messages never arrived, e.g. ${list.slice(0, 10).join(', ')}`);
    }
    await inbox.waitFor(inbox.messages.length + 1, Math.min(left, 1000)).catch(noop);
  }
}

/**
 * Publishes every message and resolves when all are acknowledged (PUBACK / PUBCOMP), keeping at
 * most `window` unacknowledged: mqtt.js does not hold back for a 5.0 server's Receive Maximum
 * (32 by default), and the broker rightly disconnects a client that exceeds it. Rejects if the
 * connection closes first.
 */
function publishAll(client: MqttClient, msgs: { topic: string; payload: string; qos: 1 | 2 }[], window = 16): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    const onClose = (): void => reject(new Error(`connection closed with ${msgs.length - done} publishes unacknowledged`));
    client.once('close', onClose);
    const pump = (): void => {
      while (next < msgs.length && next - done < window) {
        const m = msgs[next++]!;
        client.publish(m.topic, m.payload, { qos: m.qos }, (err) => {
          if (err) return reject(err);
          if (++done === msgs.length) {
            client.off('close', onClose);
            resolve();
          } else pump();
        });
      }
    };
    pump();
  });
}

function persistentOpts(clientId: string, version: 4 | 5): IClientOptions {
  return version === 5 ? { protocolVersion: 5, clientId, clean: false, properties: { sessionExpiryInterval: 3600 } } : { protocolVersion: 4, clientId, clean: false };
}

for (const how of ['SIGTERM', 'kill -9'] as const) {
  const tag = how === 'SIGTERM' ? 'term' : 'kill';

  describe(`after a ${how} restart`, () => {
    const QOS1 = 200;
    const QOS2 = 50;
    // Kept across the restart: a 3.1.1 subscriber that stays connected through it.
    let connected311: MqttClient | undefined;

    before(async () => {
      // Retained: two survive, one is cleared before the restart.
      const pub = await open(broker.url, { protocolVersion: 5, clientId: `rs-pub-${tag}` });
      await pub.client.publishAsync(`ret/${tag}/one`, 'retained one', { qos: 1, retain: true });
      await pub.client.publishAsync(`ret/${tag}/two`, 'retained two', { qos: 0, retain: true, properties: { contentType: 'text/plain', userProperties: { k: 'v' } } });
      await pub.client.publishAsync(`ret/${tag}/gone`, 'cleared later', { qos: 1, retain: true });
      await pub.client.publishAsync(`ret/${tag}/gone`, '', { qos: 1, retain: true });

      // Persistent sessions: a 5.0 one that disconnects, a 3.1.1 one that stays connected.
      const s5 = await open(broker.url, persistentOpts(`ps5-${tag}`, 5));
      assert.equal((await s5.client.subscribeAsync(`ps/${tag}/five`, { qos: 1 }))[0]?.qos, 1);
      await s5.client.endAsync();
      const s4 = await open(broker.url, persistentOpts(`ps4-${tag}`, 4));
      assert.equal((await s4.client.subscribeAsync(`ps/${tag}/four/+`, { qos: 1 }))[0]?.qos, 1);
      s4.client.on('error', noop);
      connected311 = s4.client;

      // Queued for an offline persistent subscriber: QoS 1 and QoS 2.
      const q = await open(broker.url, persistentOpts(`queue-${tag}`, 5));
      await q.client.subscribeAsync(`queue/${tag}/#`, { qos: 2 });
      await q.client.endAsync();
      // Every PUBACK and PUBCOMP is in before the restart: QoS 1 from the 5.0 publisher, within
      // the broker's Receive Maximum; QoS 2 from a 3.1.1 publisher, all at once.
      const pub311 = await open(broker.url, { protocolVersion: 4, clientId: `rs-pub311-${tag}` });
      await Promise.all([
        publishAll(pub.client, Array.from({ length: QOS1 }, (_, i) => ({ topic: `queue/${tag}/one`, payload: `q1-${i}`, qos: 1 as const }))),
        publishAll(pub311.client, Array.from({ length: QOS2 }, (_, i) => ({ topic: `queue/${tag}/two`, payload: `q2-${i}`, qos: 2 as const })), QOS2),
      ]);
      await end(pub.client, pub311.client);

      await restart(how);
    });

    after(async () => {
      connected311?.end(true);
    });

    test('retained messages survive; a cleared one stays cleared', async () => {
      const s = await open(broker.url, { protocolVersion: 5, clientId: `ret-check-${tag}` });
      try {
        await s.client.subscribeAsync(`ret/${tag}/#`, { qos: 1 });
        const got = await s.inbox.waitFor(2, 5000);
        const byTopic = new Map(got.map((m) => [m.topic, m]));
        assert.equal(byTopic.get(`ret/${tag}/one`)?.payload.toString(), 'retained one');
        assert.equal(byTopic.get(`ret/${tag}/two`)?.payload.toString(), 'retained two');
        assert.equal(byTopic.get(`ret/${tag}/two`)?.packet.properties?.contentType, 'text/plain');
        assert.ok(got.every((m) => m.packet.retain), 'retained messages must carry the retain flag');
        // A barrier: a message published now arrives after anything retained would have.
        await s.client.publishAsync(`ret/${tag}/barrier`, 'barrier', { qos: 1 });
        await waitForAll(s.inbox, ['barrier'], 5000);
        assert.ok(!s.inbox.messages.some((m) => m.topic === `ret/${tag}/gone`), 'a cleared retained message came back');
        assert.equal(s.inbox.messages.length, 3);
      } finally {
        await end(s.client);
      }
    });

    for (const version of [4, 5] as const) {
      test(`a ${version === 5 ? '5.0 session with a Session Expiry' : '3.1.1 clean session = 0 session'} is present and keeps its subscription`, async () => {
        if (version === 4 && connected311) {
          // It was connected when the broker went away.
          if (connected311.connected) await new Promise<void>((r) => connected311!.once('close', () => r()));
        }
        const c = await open(broker.url, persistentOpts(version === 5 ? `ps5-${tag}` : `ps4-${tag}`, version));
        const pub = await open(broker.url, { protocolVersion: 4, clientId: `ps-pub-${tag}-${version}` });
        try {
          assert.equal(c.connack.sessionPresent, true, 'session not present after restart');
          const topic = version === 5 ? `ps/${tag}/five` : `ps/${tag}/four/x`;
          // No SUBSCRIBE: the restored subscription routes it.
          await pub.client.publishAsync(topic, `after restart ${version}`, { qos: 1 });
          await waitForAll(c.inbox, [`after restart ${version}`], 5000);
          assert.equal(c.inbox.messages.find((m) => m.payload.toString() === `after restart ${version}`)?.packet.qos, 1);
        } finally {
          await end(c.client, pub.client);
        }
      });
    }

    test(`${QOS1} QoS 1 and ${QOS2} QoS 2 messages queued for an offline session are all delivered, QoS 2 exactly once`, async () => {
      const c = await open(broker.url, persistentOpts(`queue-${tag}`, 5));
      const pub = await open(broker.url, { protocolVersion: 4, clientId: `queue-pub2-${tag}` });
      try {
        assert.equal(c.connack.sessionPresent, true);
        const want = [...Array.from({ length: QOS1 }, (_, i) => `q1-${i}`), ...Array.from({ length: QOS2 }, (_, i) => `q2-${i}`)];
        await waitForAll(c.inbox, want, 15_000);
        // Anything still queued would arrive before this.
        await pub.client.publishAsync(`queue/${tag}/one`, 'barrier', { qos: 1 });
        await waitForAll(c.inbox, ['barrier'], 5000);
        const counts = new Map<string, number>();
        for (const m of c.inbox.messages) counts.set(m.payload.toString(), (counts.get(m.payload.toString()) ?? 0) + 1);
        for (let i = 0; i < QOS2; i++) assert.equal(counts.get(`q2-${i}`), 1, `QoS 2 message q2-${i} delivered ${counts.get(`q2-${i}`)} times`);
        for (const m of c.inbox.messages) {
          if (m.topic === `queue/${tag}/two`) assert.equal(m.packet.qos, 2);
          else assert.equal(m.packet.qos, 1);
        }
        // Order is kept per topic [MQTT-4.6.0-6]: first deliveries of q1-* are in publish order.
        const firsts = [...new Set(c.inbox.messages.map((m) => m.payload.toString()).filter((p) => p.startsWith('q1-')))];
        assert.deepEqual(firsts, Array.from({ length: QOS1 }, (_, i) => `q1-${i}`));
      } finally {
        await end(c.client, pub.client);
      }
    });
  });
}

test('QoS 2 exactly once on the wire across a kill -9: the publisher resends its PUBLISH with DUP after the restart; a raw persistent subscriber counts PUBLISH packets', async () => {
  const t = `q2wire/${process.pid}`;
  const subId = `q2wire-sub-${process.pid}`;
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
  const sub = await wireSubscriber(broker.mqttPort, subId, t, session);
  // Offline: what is published is queued in its session and survives the restart.
  sub.destroy();
  await sub.waitClosed();
  const pub = await publishQos2ResentAfterReconnect(broker.mqttPort, () => broker.mqttPort, `q2wire-pub-${process.pid}`, t, 'once', 'marker', () => restart('kill -9'));
  pub.destroy();
  const back = await wireSubscriber(broker.mqttPort, subId, undefined, session);
  try {
    await wirePublish(back, 'marker');
    assert.deepEqual(wirePayloads(back), ['once', 'marker'], 'PUBLISH packets on the wire');
  } finally {
    back.destroy();
  }
});

/**
 * Streams QoS 1 publishes from a 5.0 client (at most `window` unacknowledged) until `count` are
 * acknowledged, then kills the broker with SIGKILL while the stream is still going. Returns the
 * acknowledged payloads (including PUBACKs that were on the wire when the process died: the
 * broker sent them, so it promised those messages) and how many were sent.
 */
async function streamAndKill(prefix: string, count: number, window: number): Promise<{ acked: string[]; sent: number; inFlightAtKill: number }> {
  const pub = await open(broker.url, { protocolVersion: 5, clientId: `${prefix}-pub` });
  pub.client.on('error', noop);
  const acked = new Set<string>();
  let sent = 0;
  let reached: () => void = noop;
  const enough = new Promise<void>((resolve) => (reached = resolve));
  const pump = (): void => {
    while (pub.client.connected && sent - acked.size < window) {
      const payload = `${prefix}-${sent++}`;
      pub.client.publish('stream/t', payload, { qos: 1 }, (err) => {
        if (err) return;
        acked.add(payload);
        if (acked.size >= count) reached();
        pump();
      });
    }
  };
  pump();
  await enough;
  const inFlightAtKill = sent - acked.size;
  await broker.kill9();
  if (pub.client.connected) await new Promise<void>((r) => pub.client.once('close', () => r()));
  pub.client.end(true);
  return { acked: [...acked], sent, inFlightAtKill };
}

test('kill -9 while a publisher streams QoS 1, three times: every acknowledged message reaches both persistent subscribers', { timeout: 60_000 }, async () => {
  const ROUNDS = 3;
  const PER_ROUND = 400;
  // The broker's Receive Maximum (mqtt.max_inflight, 32): the most a 5.0 client may have unacknowledged.
  const WINDOW = 32;
  // One subscriber stays offline until the end; one (3.1.1) is online, and is reconnected after
  // every restart, so later kills also hit it while it is receiving redelivered messages.
  const off = await open(broker.url, persistentOpts('stream-offline', 5));
  await off.client.subscribeAsync('stream/#', { qos: 1 });
  await off.client.endAsync();
  let on = await open(broker.url, persistentOpts('stream-online', 4));
  await on.client.subscribeAsync('stream/#', { qos: 1 });
  const onInboxes: Inbox[] = [on.inbox];
  const mustArrive: string[] = [];
  const sentPerRound = new Map<string, number>();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      on.client.on('error', noop);
      const prefix = `r${round}`;
      const r = await streamAndKill(prefix, PER_ROUND, WINDOW);
      assert.ok(r.inFlightAtKill > 0, `round ${round}: the kill did not happen mid-stream`);
      mustArrive.push(...r.acked);
      sentPerRound.set(prefix, r.sent);
      if (on.client.connected) await new Promise<void>((res) => on.client.once('close', () => res()));
      on.client.end(true);
      broker = await start();
      on = await open(broker.url, persistentOpts('stream-online', 4));
      assert.equal(on.connack.sessionPresent, true, `round ${round}: online subscriber's session lost`);
      onInboxes.push(on.inbox);
    }
    const off2 = await open(broker.url, persistentOpts('stream-offline', 5));
    try {
      assert.equal(off2.connack.sessionPresent, true);
      // Offline subscriber: everything, after the last restart.
      await waitForAll(off2.inbox, mustArrive, 20_000);
      // Online subscriber: what it received across all its connections.
      await waitForAll(on.inbox, mustArrive, 20_000, onInboxes);
      const status = (await (await fetch(`http://127.0.0.1:${broker.httpPort}/status?format=json`)).json()) as { metrics: Record<string, number> };
      assert.equal(status.metrics['messages.dropped.queue_full'] ?? 0, 0);
      // Nothing is invented: every payload delivered was really published.
      for (const m of [...off2.inbox.messages, ...onInboxes.flatMap((b) => b.messages)]) {
        const [prefix, n] = m.payload.toString().split('-');
        assert.ok(sentPerRound.has(prefix!) && Number(n) < sentPerRound.get(prefix!)!, `unexpected payload ${m.payload.toString()}`);
      }
    } finally {
      await end(off2.client);
    }
  } finally {
    on.client.end(true);
  }
});
