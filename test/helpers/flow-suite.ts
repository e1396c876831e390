import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { BrokerProcess } from './broker';
import { LoadSubscriber, openLoopPublish } from './load';
import { brokerStatus, uniqueTopic, waitUntil } from './util';

/**
 * Flow control under open-loop load (publishers that wait only for PUBACK), the same on a single
 * node and across gateways: nothing acknowledged is dropped for a subscriber that reads, a
 * subscriber that falls behind reads its backlog from the messages log, and memory behind a
 * stalled subscriber stays bounded. Run against brokers with a small mqtt.max_mqueue_len, so
 * the pressure and backlog paths happen with a modest load.
 */

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

export interface FlowTarget {
  /** Where the publishers connect. */
  pub: BrokerProcess;
  /** Where the subscribers connect. */
  sub: BrokerProcess;
  all: BrokerProcess[];
  /** Publishers and subscribers share a process, so its flow control pauses the publishers. */
  sameProcess: boolean;
}

export function flowSuite(name: string, target: () => FlowTarget): void {
  describe(name, () => {
    const dropped = async (): Promise<number> => {
      let n = 0;
      for (const b of target().all) n += (await brokerStatus(b)).metrics['messages.dropped.queue_full'] ?? 0;
      return n;
    };

    it('an open-loop QoS 1 flood from 5 publishers reaches a reading subscriber whole, in order, nothing dropped, no publisher disconnected', async () => {
      const { pub, sub: at } = target();
      const t = uniqueTopic('flood');
      const sub = await LoadSubscriber.connect(at.mqttPort, `${t}-sub`, t, 1);
      const before = await dropped();
      const N = 3000;
      const stats = await Promise.all([0, 1, 2, 3, 4].map((i) => openLoopPublish(pub.mqttPort, { clientId: `${t}-p${i}`, topic: t, count: N, index: i })));
      for (const s of stats) assert.equal(s.acked, N);
      await sub.waitFor(5 * N);
      assertComplete(sub, 5, N, 'flood');
      assert.equal((await dropped()) - before, 0, 'messages.dropped.queue_full');
      if (target().sameProcess) {
        const m = (await brokerStatus(pub)).metrics;
        assert.ok((m['flow.publishers.paused'] ?? 0) > 0, 'publishers were paused while the subscriber caught up');
      }
      sub.close();
    });

    it('a stalled QoS 1 subscriber reads its backlog from the log, every message in order, while a fast subscriber of the same topic gets everything first', async () => {
      const { pub, sub: at } = target();
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
      const { pub, sub: at } = target();
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
      // Without a send-buffer bound the broker holds the whole 60 MB flood for the stalled socket
      // (RSS grew by about 200 MB before mqtt.max_send_buffer existed); with it, garbage between
      // collections is most of what remains.
      assert.ok(peak - rss0 < 100_000, `RSS grew by ${Math.round((peak - rss0) / 1024)} MB`);
      assertComplete(healthy, 1, N, 'healthy QoS 0 subscriber');
      healthy.close();
      stalled.close();
    });
  });
}

