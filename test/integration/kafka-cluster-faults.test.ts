import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, printWarnings, startBroker } from '../helpers/broker';
import { OwnKafka } from '../helpers/kafka';
import { LoadSubscriber, RatePublisher } from '../helpers/load';
import { sleep, uniqueTopic, waitUntil } from '../helpers/util';

// A three-broker Kafka cluster of this file's own (deploy/kafka/kafka.sh start-cluster): topics
// with three replicas and min.insync.replicas 2, so losing one broker loses nothing acknowledged.
// The brokers fence a dead one after 3 s (kafka.sh's cluster settings), well inside the 30 s
// gateway lease; on the wait below no client is disconnected and every PUBACK comes.
const prefix = `kc${process.pid}x${Date.now()}.`;
let kafka: OwnKafka;
const procs: BrokerProcess[] = [];
let gw: BrokerProcess;

const env = (name: string): Record<string, string> => ({
  TRIBUTARY_NODE__NAME: name,
  TRIBUTARY_BACKBONE__TYPE: 'kafka',
  TRIBUTARY_BACKBONE__KAFKA__BROKERS: kafka.bootstrap,
  TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
  TRIBUTARY_BACKBONE__KAFKA__REPLICATION_FACTOR: '3',
  TRIBUTARY_BACKBONE__KAFKA__MIN_INSYNC_REPLICAS: '2',
  TRIBUTARY_LISTENERS__SSL__DEFAULT__ENABLE: 'false',
  TRIBUTARY_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
  TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '0',
  TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '0',
});

before(
  async () => {
    kafka = await OwnKafka.start(3);
    procs.push(await startBroker({ command: 'router', env: env('router'), startTimeoutMs: 60_000 }));
    procs.push(await startBroker({ command: 'retain', env: env('retain'), startTimeoutMs: 60_000 }));
    gw = await startBroker({ command: 'gateway', env: env('gw'), startTimeoutMs: 60_000 });
    procs.push(gw);
  },
  { timeout: 150_000 },
);
after(
  async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await kafka?.stop();
  },
  { timeout: 60_000 },
);

it('kill -9 of one of three Kafka brokers under QoS 1 load: no acknowledged message is lost, clients stay connected and keep publishing', { timeout: 120_000 }, async () => {
  const topic = uniqueTopic('kc-kill');
  const sub = await LoadSubscriber.connect(gw.mqttPort, `kc-sub-${process.pid}`, topic, 1);
  let subClosed = false;
  sub.socket.on('close', () => (subClosed = true));
  const pub = await RatePublisher.connect(gw.mqttPort, `kc-pub-${process.pid}`, topic);
  try {
    pub.start(300);
    await waitUntil(() => pub.acked >= 600, '600 PUBACKs before the kill', 30_000);
    // Broker 1 is the first in the bootstrap list and, often, a partition leader or the group coordinator.
    await kafka.killBroker(1);
    const killedAt = Date.now();
    const ackedAtKill = pub.acked;
    await waitUntil(() => pub.closed || pub.acked >= ackedAtKill + 600, '600 more PUBACKs with one broker gone', 60_000);
    assert.equal(pub.closed, false, 'the publisher stayed connected through the broker loss');
    console.log(`[kafka-cluster-faults] ${pub.acked - ackedAtKill} PUBACKs in ${Date.now() - killedAt} ms after kill -9 of a broker`);
    await sleep(1000);
    pub.stop();
    await pub.allAcked(30_000);
    const sent = pub.sentAt.length;
    await sub.waitFor(sent, 30_000);
    assert.equal(pub.closed, false, 'the publisher stayed connected');
    assert.equal(subClosed, false, 'the subscriber stayed connected');
    const got = new Set(sub.received.get(0));
    const missing = pub.sentAt.map((_, seq) => seq).filter((seq) => !got.has(seq));
    assert.deepEqual(missing.slice(0, 10), [], `every acknowledged message delivered (${missing.length} missing)`);
    for (const p of procs) assert.equal(p.proc.exitCode, null, 'every process still runs');
  } catch (err) {
    // What the processes said, for the failure's report.
    console.log('[gw status]', await fetch(`http://127.0.0.1:${gw.httpPort}/status?format=json`).then((r) => r.text()).catch((e: Error) => e.message));
    printWarnings(Object.fromEntries(procs.map((p, i) => [p === gw ? 'gw' : `proc${i}`, p])), /lease|releas|claim|fenc|disconnect|takeover|session/i);
    throw err;
  } finally {
    pub.close();
    sub.close();
  }
});
