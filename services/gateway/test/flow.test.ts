import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import type { GatewayConfig } from '../src';
import type { Message, QoS } from '@tributary/mqtt';
import { Broker, ReadPause, Session } from '../src';
import type { Delivery, SessionOwner } from '../src';
import { FlowControl } from '../src/broker/flow';
import { Metrics } from '../src/broker/metrics';
import { channel, testBroker, wire } from './harness';
import { RecordingHost } from './session-host';

const msg = (offset: number, qos: QoS = 1): Message => ({ topic: 't', payload: Buffer.from(String(offset)), qos, retain: false, from: 'p', timestamp: Date.now(), properties: undefined, offset });
const delivery = (offset: number, qos: QoS = 1): Delivery => ({ msg: msg(offset, qos), qos, retain: false, subscriptionIds: undefined });

/** A session owner whose socket can be made unwritable; records what was sent. */
class Owner implements SessionOwner {
  readonly protocolVersion = 4;
  writable = true;
  progress = 0;
  readonly sent: number[] = [];
  sendPublish(d: Delivery): boolean {
    this.sent.push(d.msg.offset);
    return true;
  }
  sendPubrel(): void {}
  kick(): void {}
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

const limits = { maxInflight: 2, maxQueue: 8, storeQos0: true, maxBacklog: 1000, maxAwaitingRel: 100 };

describe('session backlog and send-buffer bound', () => {
  it('queues behind a full window, reports pressure at half the queue, and switches to the log when the queue is full', () => {
    const host = new RecordingHost();
    const s = new Session('c', 4, limits, host);
    const owner = new Owner();
    s.attach(owner, 65535);
    for (let o = 0; o < 2 + 8; o++) s.deliver(delivery(o));
    assert.deepEqual(owner.sent, [0, 1], 'the window is 2');
    assert.deepEqual(host.events, ['pressure']);
    assert.equal(s.queueLength, 8);
    // The queue is full: QoS 1 messages from here stay in the log, nothing is dropped.
    s.deliver(delivery(10));
    s.deliver(delivery(11));
    assert.ok(s.backlog);
    assert.deepEqual(host.events, ['pressure', 'relief', 'backlogged']);
    assert.deepEqual(s.backlog, { from: 10, count: 2, dropped: 0, parked: false });
    assert.equal(host.drops.length, 0);
    assert.equal(s.queueLength, 8, 'not queued in memory');
    // A stored cursor starts at the oldest undelivered message: the queue head.
    assert.equal(s.snapshot().cursor, 2);
    // QoS 0 follows the queue policy (dropped when full), and a retained copy is not a log message.
    s.deliver(delivery(12, 0));
    assert.equal(host.drops.length, 1);
  });

  it('reads the backlog back in order and goes live once it reached the last routed offset', () => {
    const host = new RecordingHost();
    const s = new Session('c', 4, limits, host);
    const owner = new Owner();
    s.attach(owner, 65535);
    for (let o = 0; o < 12; o++) s.deliver(delivery(o));
    assert.deepEqual(s.backlog, { from: 10, count: 2, dropped: 0, parked: false });
    // Acknowledgements drain the window and the queue.
    for (let id = 1; id <= 10; id++) s.complete(id, 1);
    assert.deepEqual(owner.sent, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(s.hasRoom);
    s.fromBacklog(delivery(10));
    assert.equal(s.backlogRead(10), false, 'offset 11 is still in the log');
    assert.equal(s.backlog?.from, 11);
    s.fromBacklog(delivery(11));
    assert.equal(s.backlogRead(11), true);
    assert.equal(s.backlog, undefined);
    assert.ok(host.events.includes('backlog-ended'));
    s.deliver(delivery(12));
    for (let id = 11; id <= 14; id++) s.complete(id, 1);
    assert.deepEqual(owner.sent, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('drops the oldest of a backlog past max_session_backlog, and reports it once', () => {
    const host = new RecordingHost();
    const s = new Session('c', 4, { ...limits, maxBacklog: 3 }, host);
    s.attach(new Owner(), 65535);
    for (let o = 0; o < 10 + 6; o++) s.deliver(delivery(o));
    assert.equal(s.backlog?.count, 6);
    for (let id = 1; id <= 10; id++) s.complete(id, 1);
    for (let o = 10; o < 16; o++) {
      s.fromBacklog(delivery(o));
      s.backlogRead(o);
    }
    assert.equal(host.drops.length, 3, 'the three oldest of six went');
    assert.equal(host.events.filter((e) => e === 'overflow').length, 1);
  });

  it('stops writing while the socket is not writable, and sends what waits once it drained', () => {
    const s = new Session('c', 4, limits, new RecordingHost());
    const owner = new Owner();
    s.attach(owner, 65535);
    owner.writable = false;
    s.deliver(delivery(0, 0));
    s.deliver(delivery(1));
    assert.deepEqual(owner.sent, []);
    assert.equal(s.queueLength, 2);
    owner.writable = true;
    s.resume();
    assert.deepEqual(owner.sent, [0, 1]);
  });
});

describe('flow control', () => {
  it('pauses a publishing connection while a session is pressured, resumes it when the pressure goes, and marks a session slow after the limit', async () => {
    const metrics = new Metrics();
    const flow = new FlowControl({ slowMs: 30, minMessages: 2, minBytes: 1024 }, metrics);
    const host = new RecordingHost();
    const subscriber = new Session('sub', 4, limits, host);
    const events: string[] = [];
    const publisher = { session: undefined as Session | undefined, pauseForFlow: () => events.push('pause'), resumeForFlow: () => events.push('resume') };
    flow.publisherActive(publisher);
    assert.equal(events.length, 0, 'nothing is pressured');
    flow.pressure(subscriber, true);
    flow.publisherActive(publisher);
    flow.publisherActive(publisher);
    assert.deepEqual(events, ['pause']);
    // A pressured subscriber that also publishes keeps reading its acknowledgements.
    const selfish = { session: subscriber as Session | undefined, pauseForFlow: (): number => events.push('self-pause'), resumeForFlow: (): void => undefined };
    flow.publisherActive(selfish);
    flow.pressure(subscriber, false);
    await tick();
    assert.deepEqual(events, ['pause', 'resume']);
    assert.equal(flow.engaged, false);
    // Pressured for longer than the limit: marked slow and no longer counted.
    flow.pressure(subscriber, true);
    flow.publisherActive(publisher);
    await flow.whenClear();
    await tick();
    assert.equal(subscriber.slow, true);
    assert.deepEqual(events, ['pause', 'resume', 'pause', 'resume']);
    assert.equal(metrics['flow.publishers.paused'], 2);
    assert.equal(metrics['flow.sessions.slow'], 1);
    flow.stop();
  });
});

describe('channel read pauses', () => {
  let broker: Broker;
  let config: GatewayConfig;
  let close: () => Promise<void>;
  before(async () => ({ broker, config, close } = await testBroker()));
  after(() => close());

  const connect = (clientId: string): mp.IConnectPacket => ({ cmd: 'connect', clientId, protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 30 });
  const publish0: mp.IPublishPacket = { cmd: 'publish', topic: 'flow/d', payload: Buffer.from('x'), qos: 0, retain: false, dup: false };
  const publish = (id: number): mp.IPublishPacket => ({ cmd: 'publish', topic: 'flow/t', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, messageId: id });

  it('a PUBLISH while flow control is engaged pauses reading (ReadPause.Flow) until the pressure is gone', async () => {
    const { ch, io } = channel(broker, config);
    ch.handleIn(wire(connect('flow-pub')));
    ch.handleIn(wire(publish(1)));
    assert.equal(io.paused, false);
    const pressured = new Session('someone', 4, limits, new RecordingHost());
    broker.flow.pressure(pressured, true);
    ch.handleIn(wire(publish(2)));
    assert.equal(io.pausedBy, ReadPause.Flow);
    broker.flow.pressure(pressured, false);
    await tick();
    assert.equal(io.paused, false);
    assert.deepEqual(io.pauses, [
      [ReadPause.Flow, true],
      [ReadPause.Flow, false],
    ]);
    await io.next((p) => p.cmd === 'puback' && p.messageId === 2);
  });

  it('too many publishes awaiting durability pause reading (ReadPause.Publishes) until half of them are durable', async () => {
    const { ch, io } = channel(broker, config);
    ch.handleIn(wire(connect('slow-disk')));
    // Durability that has not come yet: this broker's appends complete when the test says so.
    const pending: (() => void)[] = [];
    const publish = broker.publish;
    broker.publish = () => new Promise<void>((resolve) => pending.push(resolve));
    try {
      for (let i = 1; i <= 999; i++) ch.handleIn(wire(publish0));
      assert.equal(io.pausedBy, 0, '999 pending: still reading');
      ch.handleIn(wire(publish0));
      assert.equal(io.pausedBy, ReadPause.Publishes, 'the 1000th pending publish pauses reading');
      for (const done of pending.splice(0, 500)) done();
      await tick();
      assert.equal(io.pausedBy, ReadPause.Publishes, '500 still pending');
      pending.shift()!();
      await tick();
      assert.equal(io.pausedBy, 0, 'below half: reading again');
    } finally {
      broker.publish = publish;
      for (const done of pending) done();
    }
  });

  it('QoS 0 publishes sharing one durable write (appendShared) count as many pending publishes, and its failure closes the connection', async () => {
    const { ch, io } = channel(broker, config);
    ch.handleIn(wire(connect('shared-write')));
    const writes: { resolve: () => void; reject: (e: Error) => void }[] = [];
    const shared = (): Promise<void> => new Promise<void>((resolve, reject) => writes.push({ resolve, reject }));
    const first = shared();
    const second = shared();
    const third = shared();
    let current = first;
    const publish = broker.publish;
    broker.publish = () => current;
    try {
      for (let i = 1; i <= 600; i++) ch.handleIn(wire(publish0));
      current = second;
      for (let i = 1; i <= 400; i++) ch.handleIn(wire(publish0));
      assert.equal(io.pausedBy, ReadPause.Publishes, '1000 pending over two shared writes');
      writes[1]!.resolve();
      await tick();
      assert.equal(io.pausedBy, ReadPause.Publishes, 'the 400 of the second are durable, the 600 of the first are not');
      writes[0]!.resolve();
      await tick();
      assert.equal(io.pausedBy, 0, 'all durable: reading again');
      current = third;
      for (let i = 1; i <= 3; i++) ch.handleIn(wire(publish0));
      assert.equal(io.ended, false);
      writes[2]!.reject(new Error('disk full'));
      await tick();
      assert.equal(io.ended, true, 'a failed durable write closes the connection');
    } finally {
      broker.publish = publish;
    }
  });

  it('an operation later packets wait for pauses reading (ReadPause.Hold) and resumes it when done', async () => {
    const { ch, io } = channel(broker, config);
    ch.handleIn(wire(connect('hold')));
    let done!: () => void;
    ch.hold(new Promise<void>((r) => (done = r)));
    assert.equal(io.pausedBy, ReadPause.Hold);
    ch.handleIn(wire({ cmd: 'pingreq' }));
    assert.ok(!io.cmds().includes('pingresp'), 'the PINGREQ waits behind the operation');
    done();
    await io.next((p) => p.cmd === 'pingresp');
    assert.equal(io.paused, false);
  });
});
