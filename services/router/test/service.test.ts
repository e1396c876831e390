import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { MemoryBackbone, MemoryBackboneStorage, type ConsumedRecord, type Consumer, type Table } from '@tributary/backbone';
import { silentLogger } from '@tributary/common';
import { decodeMessage, encodeMessage, messageRecord, type Message } from '@tributary/mqtt';
import { ACK_HEADER, BUNDLE_HEADER, decodeBundle, downlinkTopic, GATEWAYS_TABLE, parseAck, RouterService, SESSIONS_TABLE } from '../src';
import { gatewayLeaseCodec, SessionRecord, sessionCodec } from '@tributary/records';

const MESSAGES = 'messages';
const sub = { qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };

/** Records of one topic as they arrive; `until` resolves on a delivery (no sleeps). */
class Tail {
  readonly records: ConsumedRecord[] = [];
  private waiters: Array<() => void> = [];
  readonly eachBatch = (batch: ConsumedRecord[]): void => {
    this.records.push(...batch);
    for (const w of this.waiters.splice(0)) w();
  };
  async until<T>(find: () => T | undefined): Promise<T> {
    // A deadline, so a missing record fails here; the ref'd timer also keeps the process up for
    // the router's lease ticker, which is unref'd (a process does not stay up for it).
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      for (const w of this.waiters.splice(0)) w();
    }, 10_000);
    try {
      for (;;) {
        const found = find();
        if (found !== undefined) return found;
        if (timedOut) throw new Error('timed out waiting for a record');
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      clearTimeout(deadline);
    }
  }
  /** Offsets of the messages delivered in bundles. */
  routed(): number[] {
    const out: number[] = [];
    for (const r of this.records) if (r.headers[BUNDLE_HEADER] && r.value) decodeBundle(r.value, (d) => out.push(d.offset));
    return out;
  }
  acks(clientId: string): Array<ReturnType<typeof parseAck>> {
    return this.records.filter((r) => r.key === clientId && r.headers[ACK_HEADER]).map((r) => parseAck(r.headers[ACK_HEADER]!));
  }
}

const message = (topic: string, more: Partial<Message> = {}): Message => ({ topic, payload: Buffer.from(topic), qos: 1, retain: false, from: 'pub', timestamp: Date.now(), properties: undefined, offset: -1, ...more });

/**
 * The router on one MemoryBackbone and "the gateways" on another over the same storage: the
 * router sees their session and lease records as another process's writes, as on Kafka.
 */
async function cluster(leaseMs = 60_000) {
  const storage = new MemoryBackboneStorage();
  const started: Array<{ stop(): Promise<void> }> = [];
  const backbone = async (): Promise<MemoryBackbone> => {
    const b = new MemoryBackbone({ storage });
    await b.start();
    started.push(b);
    return b;
  };
  const gw = await backbone();
  await gw.ensureTopics([{ name: MESSAGES, cleanup: 'delete' }]);
  const sessions: Table = await gw.table(SESSIONS_TABLE);
  const gateways: Table = await gw.table(GATEWAYS_TABLE);
  const router = async (): Promise<RouterService> => {
    const r = new RouterService({ backbone: await backbone(), logger: silentLogger, messagesTopic: MESSAGES, strategy: 'round_robin', leaseMs });
    await r.start();
    started.unshift(r);
    return r;
  };
  const tail = async (topic: string): Promise<Tail> => {
    const t = new Tail();
    const c: Consumer = await gw.consume({ topic, from: 'earliest', eachBatch: t.eachBatch });
    started.unshift(c);
    return t;
  };
  const lease = (name: string, incarnation = `${name}-1`) => gateways.set(name, gatewayLeaseCodec.encode({ incarnation, startedAt: Date.now(), until: Date.now() + leaseMs }));
  // What a gateway writes: a whole session record with its ownership.
  const claim = (s: Partial<SessionRecord> & { clientId: string }) =>
    sessions.set(
      s.clientId,
      sessionCodec.encode({ protocolVersion: 5, expiryInterval: 3600, subscriptions: [], cursor: 0, inflight: [], awaitingRel: [], disconnectedAt: null, incarnation: `${s.owner}-1`, claimedAt: Date.now(), ...s }),
    );
  const publish = async (topic: string): Promise<number> => (await gw.append(MESSAGES, [messageRecord(message(topic))]))[0]!.offset;
  const stopAll = async (): Promise<void> => {
    for (const s of started.splice(0)) await s.stop();
  };
  return { gw, sessions, router, tail, lease, claim, publish, stopAll };
}

describe('RouterService', () => {
  let stop: () => Promise<void> = async () => undefined;
  afterEach(() => stop());
  after(() => stop());

  it("acknowledges a claim on the owner's downlink, then routes matching messages there only", async () => {
    const c = await cluster();
    stop = c.stopAll;
    const r = await c.router();
    const down = await c.tail(downlinkTopic('gw1'));
    await c.lease('gw1');
    await c.claim({ clientId: 'c1', owner: 'gw1', epoch: 1, ack: 1, subscriptions: [['a/+', sub]] });
    const ack = await down.until(() => down.acks('c1')[0]);
    assert.deepEqual([ack?.epoch, ack?.ack], [1, 1]);
    const miss = await c.publish('b/x');
    const hit = await c.publish('a/x');
    await down.until(() => (down.routed().includes(hit) ? true : undefined));
    assert.deepEqual(down.routed(), [hit], `offset ${miss} matches no subscription`);
    assert.equal(r.stats['router.unrouted'], 1);
  });

  it('a session claimed by another gateway is routed there from then on', async () => {
    const c = await cluster();
    stop = c.stopAll;
    await c.router();
    const [one, two] = [await c.tail(downlinkTopic('gw1')), await c.tail(downlinkTopic('gw2'))];
    await Promise.all([c.lease('gw1'), c.lease('gw2')]);
    await c.claim({ clientId: 'm', owner: 'gw1', epoch: 1, ack: 1, subscriptions: [['t', sub]] });
    await one.until(() => one.acks('m')[0]);
    const first = await c.publish('t');
    await one.until(() => (one.routed().includes(first) ? true : undefined));
    await c.claim({ clientId: 'm', owner: 'gw2', epoch: 2, ack: 1, subscriptions: [['t', sub]] });
    const ack = await two.until(() => two.acks('m')[0]);
    assert.equal(ack?.epoch, 2);
    const second = await c.publish('t');
    await two.until(() => (two.routed().includes(second) ? true : undefined));
    assert.deepEqual(two.routed(), [second]);
    assert.deepEqual(one.routed(), [first], 'the old owner gets nothing more');
  });

  it("a gateway whose lease lapses loses its sessions, and their wills are published", async () => {
    const c = await cluster(200);
    stop = c.stopAll;
    const r = await c.router();
    const messages = await c.tail(MESSAGES);
    await c.lease('gw1');
    const will = encodeMessage(message('wills/c1', { payload: Buffer.from('gone') })).toString('base64');
    await c.claim({ clientId: 'c1', owner: 'gw1', epoch: 1, subscriptions: [['a', sub]], will: { message: will, delaySeconds: 0 } });
    // The lease is not renewed: once it lapses the router releases the session and publishes the will.
    const published = await messages.until(() => messages.records.find((m) => m.key === 'wills/c1'));
    assert.equal(decodeMessage(published.value!).payload.toString(), 'gone');
    const released = sessionCodec.decode(c.sessions.get('c1')!);
    assert.equal(released.owner, null);
    assert.equal(released.epoch, 2, 'a new epoch fences the old owner');
    assert.equal(released.will, undefined);
    assert.equal(r.stats['router.orphaned'], 1);
    assert.equal(r.stats['router.wills'], 1);
  });

  it('a restarted router resumes from the committed position', async () => {
    const c = await cluster();
    stop = c.stopAll;
    const first = await c.router();
    const down = await c.tail(downlinkTopic('gw1'));
    await c.lease('gw1');
    await c.claim({ clientId: 'c1', owner: 'gw1', epoch: 1, ack: 1, subscriptions: [['r', sub]] });
    await down.until(() => down.acks('c1')[0]);
    const before = await c.publish('r');
    await down.until(() => (down.routed().includes(before) ? true : undefined));
    await first.stop();
    // Published while no router runs: the next one starts after the committed offset, not at 'latest'.
    const meanwhile = await c.publish('r');
    await c.router();
    await down.until(() => (down.routed().includes(meanwhile) ? true : undefined));
    assert.deepEqual(down.routed(), [before, meanwhile]);
  });
});
