import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { flowSuite } from '../helpers/flow-suite';
import { LoadSubscriber, openLoopPublish } from '../helpers/load';
import { brokerStatus, uniqueTopic, waitUntil } from '../helpers/util';

const QUEUE = 100;

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

  flowSuite('embedded backbone', () => ({ pub: b, sub: b, all: [b], sameProcess: true }));

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
