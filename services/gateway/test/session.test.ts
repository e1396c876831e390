import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message, QoS } from '@tributary/mqtt';
import { SharedGroup } from '@tributary/router';
import { Session, type Delivery, type SessionLimits, type SessionOwner } from '../src';
import { RecordingHost } from './session-host';

/** A connection that records what the session sends; `writable` and `accept` can be turned off. */
class RecordingOwner implements SessionOwner {
  readonly protocolVersion = 5;
  writable = true;
  progress = 0;
  accept = true;
  readonly publishes: Array<{ topic: string; packetId: number; dup: boolean; qos: QoS }> = [];
  readonly pubrels: number[] = [];
  kicked: number | undefined;
  sendPublish(d: Delivery, packetId: number, dup: boolean): boolean {
    if (!this.accept) return false;
    this.publishes.push({ topic: d.msg.topic, packetId, dup, qos: d.qos });
    return true;
  }
  sendPubrel(packetId: number): void {
    this.pubrels.push(packetId);
  }
  kick(reasonCode: number): void {
    this.kicked = reasonCode;
  }
  topics(): string[] {
    return this.publishes.map((p) => p.topic);
  }
}

const limits: SessionLimits = { maxInflight: 10, maxQueue: 8, storeQos0: false, maxBacklog: 100, maxAwaitingRel: 100 };
let offset = 0;
function delivery(topic: string, qos: QoS, more: Partial<Message> = {}, shared?: SharedGroup): Delivery {
  const msg: Message = { topic, payload: Buffer.from(topic), qos, retain: false, from: 'pub', timestamp: Date.now(), properties: undefined, offset: offset++, ...more };
  return { msg, qos, retain: false, subscriptionIds: undefined, ...(shared ? { shared } : {}) };
}

function setup(l: Partial<SessionLimits> = {}, receiveMaximum = 65535) {
  const host = new RecordingHost();
  const owner = new RecordingOwner();
  const s = new Session('c1', 5, { ...limits, ...l }, host);
  s.expiryInterval = 60;
  s.attach(owner, receiveMaximum);
  return { s, host, owner };
}

describe('Session', () => {
  it('sends at once while the window has room, queues beyond it, and refills it on acknowledgement', () => {
    const { s, owner } = setup({ maxInflight: 10 }, 2);
    for (const t of ['a', 'b', 'c', 'd']) s.deliver(delivery(t, 1));
    assert.deepEqual(owner.topics(), ['a', 'b'], "the client's Receive Maximum bounds the window");
    assert.equal(s.inflightCount, 2);
    assert.equal(s.queueLength, 2);
    assert.equal(s.complete(owner.publishes[0]!.packetId, 1), true);
    assert.deepEqual(owner.topics(), ['a', 'b', 'c']);
    assert.equal(s.complete(999, 1), false, 'an unknown packet id');
  });

  it('waits while the socket is not writable, then sends in order on resume', () => {
    const { s, owner } = setup();
    owner.writable = false;
    s.deliver(delivery('x', 0));
    s.deliver(delivery('y', 1));
    assert.deepEqual(owner.topics(), []);
    owner.writable = true;
    s.resume();
    assert.deepEqual(owner.topics(), ['x', 'y']);
  });

  it('QoS 2 goes through PUBREC → PUBREL → PUBCOMP; PUBCOMP completes only phase 2', () => {
    const { s, owner } = setup();
    s.deliver(delivery('q2', 2));
    const id = owner.publishes[0]!.packetId;
    assert.equal(s.complete(id, 2), false, 'no PUBCOMP before PUBREC');
    assert.equal(s.complete(id, 1), false, 'a PUBACK does not complete QoS 2');
    assert.equal(s.received(id), true);
    assert.deepEqual(owner.pubrels, [id]);
    assert.equal(s.complete(id, 2), true);
    assert.equal(s.inflightCount, 0);
  });

  it('reattaching resends in-flight messages with DUP and PUBREL for phase 2', () => {
    const { s, owner } = setup();
    s.deliver(delivery('one', 1));
    s.deliver(delivery('two', 2));
    s.received(owner.publishes[1]!.packetId);
    s.detach();
    const next = new RecordingOwner();
    s.attach(next, 65535);
    assert.deepEqual(next.publishes.map((p) => [p.topic, p.dup]), [['one', true]]);
    assert.deepEqual(next.pubrels, [owner.publishes[1]!.packetId]);
  });

  it('drops an expired message instead of sending it', () => {
    const { s, owner, host } = setup({}, 1);
    s.deliver(delivery('first', 1));
    s.deliver(delivery('stale', 1, { timestamp: Date.now() - 10_000, properties: { messageExpiryInterval: 1 } }));
    s.deliver(delivery('fresh', 1));
    s.complete(owner.publishes[0]!.packetId, 1);
    assert.deepEqual(owner.topics(), ['first', 'fresh']);
    assert.deepEqual(host.drops, [['expired', 'stale']]);
  });

  it('offline, the queue is bounded: QoS 0 is not stored (qos0_msg, with mqueue_store_qos0 off), the oldest QoS 1 is dropped and counted', () => {
    const { s, host } = setup({ maxQueue: 3 });
    s.detach();
    s.deliver(delivery('q0', 0));
    for (const t of ['m1', 'm2', 'm3', 'm4']) s.deliver(delivery(t, 1));
    assert.equal(s.queueLength, 3);
    assert.deepEqual(host.drops, [['qos0_msg', 'q0'], ['queue_full', 'm1']]);
  });

  it('a connected session that falls behind enters the backlog, and leaves it once it read the last offset', () => {
    const { s, owner, host } = setup({ maxQueue: 4, maxInflight: 1 });
    const sent = [delivery('w', 1), delivery('q1', 1), delivery('q2', 1), delivery('q3', 1), delivery('q4', 1)];
    for (const d of sent) s.deliver(d);
    assert.equal(s.backlog, undefined);
    const behind = delivery('behind', 1);
    s.deliver(behind);
    const backlog = s.backlog as Session['backlog'];
    assert.ok(backlog, 'a backlog from the message that did not fit');
    assert.equal(backlog.from, behind.msg.offset);
    assert.ok(host.events.includes('backlogged'));
    const later = delivery('later', 1);
    s.deliver(later);
    assert.equal(backlog.count, 2, 'live QoS 1 messages stay in the log meanwhile');
    // The client acknowledges everything; the reader hands back the two logged messages.
    for (let i = 0; i < 5; i++) s.complete(owner.publishes[owner.publishes.length - 1]!.packetId, 1);
    s.fromBacklog(behind);
    assert.equal(s.backlogRead(behind.msg.offset), false, 'not yet at the last routed offset');
    s.complete(owner.publishes[owner.publishes.length - 1]!.packetId, 1);
    s.fromBacklog(later);
    assert.equal(s.backlogRead(later.msg.offset), true);
    assert.equal(s.backlog, undefined);
    assert.ok(host.events.includes('backlog-ended'));
    assert.deepEqual(owner.topics().slice(-2), ['behind', 'later']);
  });

  it('a session that never had a message in flight creates no in-flight or awaitingRel collections, whatever reads them', () => {
    // Every connection's session is snapshotted (Kafka mode claims it) and swept by the retry timer:
    // those reads once created a Map and a Set per connection, ~0.5 KB of heap each.
    const { s, owner } = setup();
    const collections = (): unknown[] => {
      const inner = s as unknown as { _inflight?: unknown; incoming: { _awaitingRel?: unknown } };
      return [inner._inflight, inner.incoming._awaitingRel];
    };
    s.retry(Date.now(), Date.now());
    assert.equal(s.complete(7, 1), false);
    assert.equal(s.received(7), false);
    s.abandon(7);
    const snap = s.snapshot();
    assert.deepEqual([snap.inflight, snap.awaitingRel, s.inflightCount, s.awaitingRelCount], [[], [], 0, 0]);
    assert.deepEqual(collections(), [undefined, undefined]);
    s.deliver(delivery('first', 1));
    assert.equal(owner.publishes.length, 1);
    assert.equal(s.inflightCount, 1);
  });

  it('snapshot and restore: subscriptions, cursor, in-flight and awaitingRel survive', () => {
    const { s, owner } = setup();
    s.subscriptions.set('a/#', { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    s.awaitingRel.add(42);
    const d = delivery('kept', 1);
    s.deliver(d);
    const snap = s.snapshot();
    assert.deepEqual(snap.inflight, [[d.msg.offset, owner.publishes[0]!.packetId, 1, 1]]);
    assert.deepEqual(snap.awaitingRel, [42]);
    assert.equal(snap.cursor, d.msg.offset + 1);
    assert.equal(snap.disconnectedAt, null);
    const restored = new Session(snap.clientId, snap.protocolVersion, limits, new RecordingHost());
    for (const [f, o] of snap.subscriptions) restored.subscriptions.set(f, o);
    for (const [, packetId, qos, phase] of snap.inflight) restored.restoreInflight({ ...d, qos }, packetId, phase);
    const next = new RecordingOwner();
    restored.attach(next, 65535);
    assert.deepEqual(next.publishes.map((p) => [p.topic, p.packetId, p.dup]), [['kept', owner.publishes[0]!.packetId, true]]);
    restored.deliver(delivery('new', 1));
    assert.notEqual(next.publishes[1]!.packetId, owner.publishes[0]!.packetId, 'restored packet ids are not reused');
    assert.deepEqual([...restored.subscriptions.keys()], ['a/#']);
  });

  it('takeShared hands back unacknowledged shared messages, queued or sent, and keeps the rest', () => {
    const { s, owner } = setup({}, 1);
    const group = new SharedGroup('g', 'x/#', '$share/g/x/#');
    s.deliver(delivery('shared-sent', 1, {}, group));
    s.deliver(delivery('own', 1));
    s.deliver(delivery('shared-queued', 1, {}, group));
    const taken = s.takeShared().map((d) => d.msg.topic);
    assert.deepEqual(taken, ['shared-sent', 'shared-queued']);
    assert.equal(s.inflightCount, 0);
    assert.equal(s.queueLength, 1);
    assert.deepEqual(owner.topics(), ['shared-sent']);
    s.resume();
    assert.deepEqual(owner.topics(), ['shared-sent', 'own'], 'the freed window sends the rest');
  });
});
