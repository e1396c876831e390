import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, printWarnings, startBroker } from '../helpers/broker';
import { OwnKafka } from '../helpers/kafka';
import { LoadSubscriber, RatePublisher } from '../helpers/load';
import { RawClient } from '../helpers/raw';
import { clientTracker, metric, Opened, sleep, uniqueTopic, waitForPayload, waitUntil } from '../helpers/util';

// Kafka faults on a real Kafka of this file's own (it is paused and restarted, so never the shared
// one): a router, a retain service and two gateways, each its own process. Gateway A has a
// backbone.kafka.stall_timeout of 60 s (the default is 30 s: a restart of the JVM on a loaded CI
// box, stop and start, once took longer than that), gateway B a short one (3 s).
const prefix = `kf${process.pid}x${Date.now()}.`;
const SHORT_STALL_TIMEOUT_MS = 3000;
const LONG_STALL_TIMEOUT_MS = 60_000;
let kafka: OwnKafka;
let router: BrokerProcess;
let retain: BrokerProcess;
let a: BrokerProcess;
let b: BrokerProcess;

const env = (name: string, extra: Record<string, string> = {}): Record<string, string> => ({
  TRIBUTARY_NODE__NAME: name,
  TRIBUTARY_BACKBONE__TYPE: 'kafka',
  TRIBUTARY_BACKBONE__KAFKA__BROKERS: kafka.bootstrap,
  TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
  TRIBUTARY_LISTENERS__SSL__DEFAULT__ENABLE: 'false',
  TRIBUTARY_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
  TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '0',
  TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '0',
  ...extra,
});

before(
  async () => {
    kafka = await OwnKafka.start();
    router = await startBroker({ command: 'router', env: env('router') });
    retain = await startBroker({ command: 'retain', env: env('retain') });
    [a, b] = await Promise.all([
      startBroker({ command: 'gateway', env: env('gw-a', { TRIBUTARY_BACKBONE__KAFKA__STALL_TIMEOUT: String(LONG_STALL_TIMEOUT_MS) }) }),
      startBroker({ command: 'gateway', env: env('gw-b', { TRIBUTARY_BACKBONE__KAFKA__STALL_TIMEOUT: String(SHORT_STALL_TIMEOUT_MS) }) }),
    ]);
  },
  { timeout: 120_000 },
);
after(
  async () => {
    await Promise.all([a, b].map((p) => p?.stop()));
    await Promise.all([router?.stop(), retain?.stop()]);
    await kafka?.stop();
  },
  { timeout: 60_000 },
);

const onA = clientTracker(() => a.url);
const onB = clientTracker(() => b.url);

/** Kafka answers again (SIGCONT after a pause): the first PUBACK of a 5.0 publish that succeeds. */
async function publishesAgain(raw: RawClient, topic: string): Promise<void> {
  let id = 100;
  await waitUntil(async () => {
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('again'), qos: 1, messageId: ++id, dup: false, retain: false } as mp.IPublishPacket);
    const ack = (await raw.next('puback', (p) => (p as mp.IPubackPacket).messageId === id, 10_000)) as mp.IPubackPacket;
    return (ack.reasonCode ?? 0) === 0;
  }, 'a successful publish after Kafka came back', 30_000);
}

describe('a Kafka stall', () => {
  it('of 10 s under 500 msg/s QoS 1 (shorter than stall_timeout): nobody is disconnected, PUBACKs wait for Kafka and none is lost, every acknowledged message is delivered', { timeout: 120_000 }, async () => {
    const topic = uniqueTopic('kf-stall');
    const sub = await LoadSubscriber.connect(a.mqttPort, `kf-sub-${process.pid}`, topic, 1);
    let subClosed = false;
    sub.socket.on('close', () => (subClosed = true));
    const pub = await RatePublisher.connect(a.mqttPort, `kf-pub-${process.pid}`, topic);
    try {
      pub.start(500);
      await waitUntil(() => pub.acked >= 1000, '1000 PUBACKs before the stall', 20_000);
      const pausedAt = Date.now();
      kafka.pause();
      await sleep(10_000);
      const resumedAt = Date.now();
      kafka.resume();
      await waitUntil(() => pub.ackedAt.some((t) => t !== undefined && t >= resumedAt), 'a PUBACK after Kafka came back', 20_000);
      const firstAck = Math.min(...pub.ackedAt.filter((t): t is number => t !== undefined && t >= resumedAt));
      // Three more seconds of load after the stall, then everything must be acknowledged.
      await sleep(3000);
      pub.stop();
      await pub.allAcked(30_000);
      const sent = pub.sentAt.length;
      await sub.waitFor(sent, 30_000);

      // Measured, for the record (docs/kafka.md "Faults" has the numbers of a run).
      const delays = pub.sentAt.map((t, i) => pub.ackedAt[i]! - t);
      console.log(`[kafka-faults] stall 10 s: ${sent} sent, first PUBACK ${firstAck - resumedAt} ms after SIGCONT, max PUBACK delay ${Math.max(...delays)} ms`);

      assert.equal(pub.closed, false, 'the publisher was not disconnected');
      assert.equal(subClosed, false, 'the subscriber was not disconnected');
      assert.equal(pub.acked, sent, 'every PUBACK came');
      // Never early: what was published while Kafka was paused is acknowledged only after it answered.
      const early = pub.sentAt.filter((t, i) => t > pausedAt + 500 && t < resumedAt && pub.ackedAt[i]! < resumedAt).length;
      assert.equal(early, 0, 'no PUBACK for a message published during the stall before Kafka came back');
      // A generous bound on the resumption (the requirement is 2 s; a loaded CI box is slower).
      assert.ok(firstAck - resumedAt < 5000, `acknowledgements resumed ${firstAck - resumedAt} ms after Kafka came back`);
      const got = new Set(sub.received.get(0));
      const missing = pub.sentAt.map((_, seq) => seq).filter((seq) => !got.has(seq));
      assert.deepEqual(missing.slice(0, 10), [], `every acknowledged message delivered (${missing.length} missing)`);
      assert.equal(await metric(a, 'messages.publish.stalled'), 0);
    } finally {
      pub.close();
      sub.close();
    }
  });

  it('longer than stall_timeout: MQTT 5 publishes get PUBACK 0x80 with a reason string, 3.1.1 publishers are disconnected, counted and logged once; publishing works again once Kafka answers', { timeout: 90_000 }, async () => {
    const topic = uniqueTopic('kf-timeout');
    const v5 = await RawClient.connected(b.mqttPort, `kf-v5-${process.pid}`, 5);
    onB.raws.push(v5);
    const v3 = await RawClient.connected(b.mqttPort, `kf-v3-${process.pid}`, 4);
    onB.raws.push(v3);
    const logged = (): number => b.logs.filter((l) => String(l.msg).includes('stall_timeout')).length;
    const before = logged();
    kafka.pause();
    let resumed = false;
    try {
      const pausedAt = Date.now();
      for (let id = 1; id <= 3; id++) v5.send({ cmd: 'publish', topic, payload: Buffer.from(`v5-${id}`), qos: 1, messageId: id, dup: false, retain: false } as mp.IPublishPacket);
      v3.send({ cmd: 'publish', topic, payload: Buffer.from('v3'), qos: 1, messageId: 1, dup: false, retain: false } as mp.IPublishPacket);
      const acks = (await Promise.all([1, 2, 3].map((id) => v5.next('puback', (p) => (p as mp.IPubackPacket).messageId === id, 15_000)))) as mp.IPubackPacket[];
      const waited = Date.now() - pausedAt;
      assert.ok(waited >= SHORT_STALL_TIMEOUT_MS - 100, `refused only after stall_timeout (after ${waited} ms)`);
      for (const ack of acks) {
        assert.equal(ack.reasonCode, 0x80, 'PUBACK 0x80 Unspecified error');
        assert.match(String(ack.properties?.reasonString), /stall_timeout/);
      }
      // Still failing at once while Kafka is paused, and the 5.0 client stays connected.
      v5.send({ cmd: 'publish', topic, payload: Buffer.from('v5-4'), qos: 1, messageId: 4, dup: false, retain: false } as mp.IPublishPacket);
      assert.equal(((await v5.next('puback', (p) => (p as mp.IPubackPacket).messageId === 4, 5000)) as mp.IPubackPacket).reasonCode, 0x80);
      await v3.waitClosed(15_000);
      assert.equal(v5.closed, false, 'the 5.0 client is still connected');
      assert.ok((await metric(b, 'messages.publish.stalled')) >= 5, 'counted');
      assert.equal(logged() - before, 1, 'the stall logged once, not once per message');
      kafka.resume();
      resumed = true;
      await publishesAgain(v5, topic);
      await waitUntil(() => b.logs.some((l) => String(l.msg).includes('Kafka answers again')), 'the end of the episode logged', 10_000);
    } finally {
      if (!resumed) kafka.resume();
    }
  });
});

/** Connects once the gateway can open sessions again (CONNACK 0x88 while it cannot reach Kafka). */
async function connectWhenBack(on: typeof onA): Promise<Opened> {
  let opened: Opened | undefined;
  await waitUntil(async () => {
    opened = await on.client({ protocolVersion: 5 }).catch(() => undefined);
    return opened !== undefined;
  }, 'a CONNACK after the restart', 60_000);
  return opened!;
}

describe('a restart of the Kafka broker with its data', () => {
  it('gateways, router and retain reconnect by themselves: publish, subscribe and retained messages work after it', { timeout: 120_000 }, async () => {
    const t = uniqueTopic('kf-restart');
    const kept = `${t}/kept`;
    // A retained message from before the restart must still be there after it (data kept).
    const first = await onA.client({ protocolVersion: 5 });
    await first.client.publishAsync(kept, 'before restart', { qos: 1, retain: true });
    const restartedAt = Date.now();
    await kafka.restart();
    const upAt = Date.now();
    try {
      // Clients of before may have been closed meanwhile; new ones must work on both gateways.
      const sub = await connectWhenBack(onB);
      await sub.client.subscribeAsync(`${t}/#`, { qos: 1 });
      await waitForPayload(sub.inbox, 'before restart', 30_000);
      const pub = await connectWhenBack(onA);
      await waitUntil(async () => {
        await pub.client.publishAsync(`${t}/live`, 'after restart', { qos: 1 });
        return sub.inbox.waitFor(2, 2000).then(() => true, () => false);
      }, 'a message across gateways after the restart', 60_000);
      await waitForPayload(sub.inbox, 'after restart', 5000);
      console.log(`[kafka-faults] restart: Kafka down and up in ${upAt - restartedAt} ms, pub/sub across gateways ${Date.now() - upAt} ms after it was up`);
      // The retain service took a new retained message after the restart.
      await pub.client.publishAsync(`${t}/new`, 'retained after', { qos: 1, retain: true });
      await waitUntil(async () => {
        // A CONNACK may still be slow while the gateway's Kafka connections come back: try again.
        const late = await onB.client({ protocolVersion: 5 }).catch(() => undefined);
        if (!late) return false;
        await late.client.subscribeAsync(`${t}/new`, { qos: 1 });
        return late.inbox.waitFor(1, 1000).then((m) => m[0]?.payload.toString() === 'retained after', () => false);
      }, 'the new retained message on gateway B', 30_000);
      for (const p of [router, retain, a, b]) assert.equal(p.proc.exitCode, null, 'every process still runs');
    } catch (err) {
      printWarnings({ 'gw-a': a, 'gw-b': b, router });
      throw err;
    }
  });

  it('a loaded 3.1.1 publisher stays connected through 12 s of refused connections and a restart, and loses nothing', { timeout: 150_000 }, async () => {
    const topic = uniqueTopic('kf-restart-load');
    // QoS 1 load through the restart on gateway A (stall_timeout 60 s): its appends wait for
    // Kafka rather than fail when the producer's tries run out (10 tries were about 8 s).
    const loadSub = await LoadSubscriber.connect(a.mqttPort, `kf-rs-sub-${process.pid}`, topic, 1);
    let loadSubClosed = false;
    loadSub.socket.on('close', () => (loadSubClosed = true));
    const load = await RatePublisher.connect(a.mqttPort, `kf-rs-pub-${process.pid}`, topic);
    try {
      load.start(200);
      await waitUntil(() => load.acked >= 200, '200 PUBACKs before the restart', 20_000);
      const restartedAt = Date.now();
      await kafka.restart(12_000);
      const upAt = Date.now();
      const ackedAtRestart = load.acked;
      await waitUntil(() => load.closed || load.acked >= ackedAtRestart + 200, '200 more PUBACKs after the restart', 60_000);
      load.stop();
      assert.equal(load.closed, false, `the loaded publisher stayed connected through the restart (Kafka down and up in ${upAt - restartedAt} ms)`);
      const resumed = Math.min(...load.ackedAt.filter((at): at is number => at !== undefined && at >= upAt)) - upAt;
      console.log(`[kafka-faults] restart under load: Kafka down and up in ${upAt - restartedAt} ms, PUBACKs resumed ${resumed} ms after it was up`);
      await load.allAcked(30_000);
      // Router redeliveries may repeat messages: count distinct ones.
      const distinct = (): number => new Set(loadSub.received.get(0)).size;
      await waitUntil(() => distinct() >= load.sentAt.length, 'every acknowledged message delivered', 30_000);
      assert.equal(loadSubClosed, false, 'the load subscriber stayed connected');
    } catch (err) {
      printWarnings({ 'gw-a': a });
      throw err;
    } finally {
      load.close();
      loadSub.close();
    }
  });
});
