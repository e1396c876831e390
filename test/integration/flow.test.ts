import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { LoadSubscriber, openLoopPublish } from '../helpers/load';
import { brokerStatus, uniqueTopic, waitUntil } from '../helpers/util';

// Flow control under open-loop load (publishers that wait only for PUBACK): nothing acknowledged
// is dropped for a subscriber that reads, a subscriber that falls behind reads its backlog from
// the messages log, and memory behind a stalled subscriber stays bounded. A small queue
// (mqtt.max_mqueue_len) makes the pressure and backlog paths happen with a modest load.
const QUEUE = 100;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Every (publisher, sequence) in 0..count-1 for each of `publishers`, exactly once and in order. */
function assertComplete(sub: LoadSubscriber, publishers: number, count: number, what: string): void {
  for (let p = 0; p < publishers; p++) {
    const seqs = sub.received.get(p) ?? [];
    assert.equal(seqs.length, count, `${what}: publisher ${p} delivered ${seqs.length} of ${count}`);
    for (let i = 0; i < count; i++) if (seqs[i] !== i) assert.fail(`${what}: publisher ${p} message ${i} arrived as ${seqs[i]} (out of order or duplicated)`);
  }
}

export function flowSuite(name: string, brokers: () => { pub: BrokerProcess; sub: BrokerProcess; all: BrokerProcess[] }): void {
  describe(name, () => {
    const dropped = async (): Promise<number> => {
      let n = 0;
      for (const b of brokers().all) n += (await brokerStatus(b)).metrics['messages.dropped.queue_full'] ?? 0;
      return n;
    };

    it('an open-loop QoS 1 flood from 5 publishers reaches a reading subscriber whole, in order, nothing dropped, no publisher disconnected', async () => {
      const { pub, sub: at } = brokers();
      const t = uniqueTopic('flood');
      const sub = await LoadSubscriber.connect(at.mqttPort, `${t}-sub`, t, 1);
      const before = await dropped();
      const N = 3000;
      const stats = await Promise.all([0, 1, 2, 3, 4].map((i) => openLoopPublish(pub.mqttPort, { clientId: `${t}-p${i}`, topic: t, count: N, index: i })));
      for (const s of stats) assert.equal(s.acked, N);
      await sub.waitFor(5 * N);
      assertComplete(sub, 5, N, 'flood');
      assert.equal((await dropped()) - before, 0, 'messages.dropped.queue_full');
      const m = (await brokerStatus(pub)).metrics;
      assert.ok((m['flow.publishers.paused'] ?? 0) > 0, 'publishers were paused while the subscriber caught up');
      sub.close();
    });

    it('a stalled QoS 1 subscriber reads its backlog from the log, every message in order, while a fast subscriber of the same topic gets everything first', async () => {
      const { pub, sub: at } = brokers();
      const t = uniqueTopic('backlog');
      const fast = await LoadSubscriber.connect(at.mqttPort, `${t}-fast`, t, 1);
      const slow = await LoadSubscriber.connect(at.mqttPort, `${t}-slow`, t, 1);
      slow.pause();
      const N = 4000;
      const before = await dropped();
      const stats = await openLoopPublish(pub.mqttPort, { clientId: `${t}-p`, topic: t, count: N, size: 512 });
      assert.equal(stats.acked, N);
      // The fast subscriber is not held back by the stalled one: it has everything while the other reads nothing.
      await fast.waitFor(N);
      assertComplete(fast, 1, N, 'fast subscriber');
      const during = await brokerStatus(at);
      assert.ok(during.stats['sessions.backlog.count']! >= 1, `the stalled session reads from the log (stats: ${JSON.stringify(during.stats)})`);
      assert.ok(during.stats['sessions.backlog.messages']! > 0, 'its backlog is counted');
      slow.resume();
      await slow.waitFor(N);
      assertComplete(slow, 1, N, 'slow subscriber');
      assert.equal((await dropped()) - before, 0, 'messages.dropped.queue_full');
      await waitUntil(async () => (await brokerStatus(at)).stats['sessions.backlog.count'] === 0, 'the backlog to end once caught up');
      fast.close();
      slow.close();
    });

    it('memory behind a stalled QoS 0 subscriber stays bounded while a healthy one gets the whole 1 KB flood', async () => {
      const { pub, sub: at } = brokers();
      const t = uniqueTopic('stalled');
      const healthy = await LoadSubscriber.connect(at.mqttPort, `${t}-ok`, t, 0);
      const stalled = await LoadSubscriber.connect(at.mqttPort, `${t}-stuck`, t, 0);
      stalled.pause();
      const rss0 = rssKb(at.proc.pid!);
      let peak = rss0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKb(at.proc.pid!))), 50);
      const N = 60_000;
      await openLoopPublish(pub.mqttPort, { clientId: `${t}-p`, topic: t, count: N, qos: 0, size: 1024 });
      await healthy.waitFor(N);
      clearInterval(sampler);
      // Without a send-buffer bound the broker would hold the whole 60 MB flood for the stalled socket.
      assert.ok(peak - rss0 < 40_000, `RSS grew by ${Math.round((peak - rss0) / 1024)} MB`);
      assertComplete(healthy, 1, N, 'healthy QoS 0 subscriber');
      healthy.close();
      stalled.close();
    });
  });
}

describe('flow control on a single node', () => {
  let b: BrokerProcess;
  let small: BrokerProcess;
  before(async () => {
    const env = { TRIBUTARY_MQTT__MAX_MQUEUE_LEN: String(QUEUE), TRIBUTARY_MQTT__MAX_SEND_BUFFER: '256KB' };
    b = await startBroker({ env });
    small = await startBroker({ env: { ...env, TRIBUTARY_MQTT__MAX_SESSION_BACKLOG: '500' } });
  });
  after(async () => {
    await Promise.all([b?.stop(), small?.stop()]);
  });

  flowSuite('embedded backbone', () => ({ pub: b, sub: b, all: [b] }));

  it('past mqtt.max_session_backlog the oldest messages of the backlog are dropped, counted and logged once', async () => {
    const t = uniqueTopic('bound');
    const sub = await LoadSubscriber.connect(small.mqttPort, `${t}-sub`, t, 1);
    sub.pause();
    const N = 3000;
    const before = (await brokerStatus(small)).metrics['messages.dropped.queue_full'] ?? 0;
    await openLoopPublish(small.mqttPort, { clientId: `${t}-p`, topic: t, count: N, size: 256 });
    sub.resume();
    await waitUntil(async () => (await brokerStatus(small)).stats['sessions.backlog.count'] === 0, 'the backlog to be read', 30_000);
    const droppedNow = ((await brokerStatus(small)).metrics['messages.dropped.queue_full'] ?? 0) - before;
    await sub.waitFor(N - droppedNow);
    const seqs = sub.received.get(0) ?? [];
    assert.ok(droppedNow > 0, 'some messages were dropped');
    assert.equal(seqs.length + droppedNow, N, 'every message was either delivered or counted as dropped');
    assert.ok(sub.inOrder(), 'what arrived is in order');
    // Kept: what was queued and in flight before the backlog, then the newest max_session_backlog.
    assert.equal(seqs[seqs.length - 1], N - 1, 'the newest message arrived');
    assert.ok(seqs.length >= 500, `at least the backlog bound arrived (${seqs.length})`);
    const warnings = small.logs.filter((l) => String(l.msg).includes('max_session_backlog') && l.clientId === `${t}-sub`);
    assert.equal(warnings.length, 1, 'logged once for the episode');
    sub.close();
  });
});
