import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedBackbone } from '@tributary/backbone';
import { loadConfig, silentLogger } from '@tributary/common';
import type { ClientInfo, HookPoint, HookSignatures } from '@tributary/hooks';
import { Message, newMessage, QoS } from '@tributary/mqtt';
import { BackboneSessionStore, Broker, BrokerCore, Delivery, LocalRouting, MESSAGES_TOPIC, OpenSessionRequest, replay, restoreSession, RetainedStore, RoutingStrategy, Session, SessionOwner, Will, GatewayConfig, gatewayConfigSchema } from '../src';

/** A connection as the broker sees it: records what the session sends; a kick closes it as a channel does. */
class RecordingOwner implements SessionOwner {
  readonly protocolVersion = 5;
  readonly writable = true;
  readonly progress = 0;
  readonly publishes: { topic: string; payload: string; qos: QoS; retain: boolean; packetId: number; dup: boolean }[] = [];
  kicked: number | undefined;
  closed = false;

  constructor(
    private readonly broker: Broker,
    readonly session: Session,
    private readonly will?: Will,
  ) {}

  sendPublish(d: Delivery, packetId: number, dup: boolean): boolean {
    this.publishes.push({ topic: d.msg.topic, payload: d.msg.payload.toString(), qos: d.qos, retain: d.retain, packetId, dup });
    return true;
  }
  sendPubrel(): void {}
  kick(reasonCode: number): void {
    this.kicked = reasonCode;
    this.close(this.will);
  }
  /** The connection ends (no DISCONNECT: a will applies). */
  close(will = this.will): void {
    if (this.closed) return;
    this.closed = true;
    this.broker.connectionClosed(this.session, this, will);
  }
  payloads(): string[] {
    return this.publishes.map((p) => p.payload);
  }
}

const client = (clientId: string): ClientInfo => ({ clientId, username: undefined, peerhost: '127.0.0.1', protocolVersion: 5, isSuperuser: false });

interface Connected {
  owner: RecordingOwner;
  session: Session;
  present: boolean;
}

/** Opens (or resumes) a session and attaches a recording connection, as the channel does after CONNACK. */
async function connect(broker: Broker, clientId: string, opts: Partial<OpenSessionRequest> = {}): Promise<Connected> {
  const req: OpenSessionRequest = { clientId, protocolVersion: 5, cleanStart: false, expiryInterval: 0, receiveMaximum: 65535, client: client(clientId), ...opts };
  const { session, present } = await broker.openSession(req);
  const owner = new RecordingOwner(broker, session, req.will);
  session.attach(owner, req.receiveMaximum);
  return { owner, session, present };
}

function subscribe(broker: Broker, session: Session, filter: string, qos: QoS = 1): void {
  const options = { qos, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
  assert.equal(broker.subscribe(session, filter, options).refused, undefined);
  broker.deliverRetained(session, filter, options);
}

const publish = (broker: Broker, topic: string, payload: string, qos: QoS = 1, retain = false): Promise<unknown> =>
  broker.publish(newMessage(topic, Buffer.from(payload), qos, retain, 'publisher'));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A broker over a real embedded backbone in a temporary directory; `restart` builds a new Broker over the same backbone. */
class TestBed {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'tributary-broker-'));
  readonly config: GatewayConfig;
  readonly backbone: EmbeddedBackbone;
  broker!: Broker;
  /** Hook calls by point, in order. */
  readonly calls: [HookPoint, unknown[]][] = [];

  constructor(overrides: Record<string, unknown> = {}) {
    this.config = loadConfig(gatewayConfigSchema, { env: {}, overrides: { 'node.data_dir': this.dataDir, ...overrides } }).config;
    this.backbone = new EmbeddedBackbone({ dataDir: this.dataDir });
  }

  async start(routing?: RoutingStrategy): Promise<Broker> {
    await this.backbone.start();
    await this.backbone.ensureTopics([{ name: MESSAGES_TOPIC, cleanup: 'delete' }]);
    return this.open(routing);
  }

  private async open(routing?: RoutingStrategy): Promise<Broker> {
    const b = this.backbone;
    this.broker = new Broker({ config: this.config, backbone: b, sessions: await BackboneSessionStore.open(b), retained: await RetainedStore.open(b), logger: silentLogger, routing });
    for (const point of ['session.created', 'session.resumed', 'session.takenover', 'session.discarded', 'session.terminated', 'message.dropped'] as const) {
      const record = (...args: unknown[]): void => void this.calls.push([point, args]);
      this.broker.hooks.add(point, { name: 'test', priority: 'plugins' }, record as HookSignatures[typeof point]);
    }
    await this.broker.start();
    return this.broker;
  }

  /** Stops this Broker (its sessions are saved) and starts a new one over the same backbone. */
  async restart(): Promise<Broker> {
    await this.broker.stop();
    this.calls.length = 0;
    return this.open();
  }

  points(clientId?: string): string[] {
    return this.calls.filter(([, args]) => clientId === undefined || (args[0] as ClientInfo).clientId === clientId).map(([p, args]) => (p === 'session.terminated' ? `${p}:${String(args[1])}` : p));
  }

  async close(): Promise<void> {
    await this.broker.stop();
    await this.backbone.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

describe('broker core (single node strategies)', () => {
  let bed: TestBed;
  let broker: Broker;
  beforeEach(async () => {
    bed = new TestBed();
    broker = await bed.start();
  });
  afterEach(() => bed.close());

  it('routes a published message to every session whose subscription matches, at the lower QoS', async () => {
    const wild = await connect(broker, 'wild');
    const exact = await connect(broker, 'exact');
    const other = await connect(broker, 'other');
    subscribe(broker, wild.session, 'a/+', 1);
    subscribe(broker, exact.session, 'a/b', 0);
    subscribe(broker, other.session, 'x/#', 1);
    await publish(broker, 'a/b', 'hello', 1);
    assert.deepEqual(wild.owner.publishes.map((p) => [p.topic, p.payload, p.qos]), [['a/b', 'hello', 1]]);
    assert.deepEqual(exact.owner.publishes.map((p) => [p.topic, p.payload, p.qos]), [['a/b', 'hello', 0]]);
    assert.deepEqual(other.owner.publishes, []);
    assert.equal(broker.metrics['messages.sent'], 2);
  });

  it('delivers the retained messages matching a new subscription, flagged retained [MQTT-3.8.4-4]', async () => {
    await publish(broker, 'r/1', 'kept', 1, true);
    await publish(broker, 'r/2', 'not kept', 1, false);
    const sub = await connect(broker, 'late');
    subscribe(broker, sub.session, 'r/#', 1);
    assert.deepEqual(sub.owner.publishes.map((p) => [p.topic, p.payload, p.retain]), [['r/1', 'kept', true]]);
  });

  it('creates a session, resumes it with its subscriptions, and discards it on a clean start', async () => {
    const first = await connect(broker, 'c', { expiryInterval: 60 });
    assert.equal(first.present, false);
    subscribe(broker, first.session, 't');
    first.owner.close();
    const resumed = await connect(broker, 'c', { expiryInterval: 60 });
    assert.equal(resumed.present, true);
    assert.deepEqual([...resumed.session.subscriptions.keys()], ['t']);
    await publish(broker, 't', 'still routed');
    assert.deepEqual(resumed.owner.payloads(), ['still routed']);
    resumed.owner.close();
    const fresh = await connect(broker, 'c', { expiryInterval: 60, cleanStart: true });
    assert.equal(fresh.present, false);
    assert.deepEqual([...fresh.session.subscriptions.keys()], []);
    await publish(broker, 't', 'nobody');
    assert.deepEqual(fresh.owner.payloads(), []);
    assert.deepEqual(bed.points('c'), ['session.created', 'session.resumed', 'session.discarded', 'session.terminated:discarded', 'session.created']);
  });

  it('takes a session over: the old connection is kicked with 0x8E and the new one is routed to', async () => {
    const old = await connect(broker, 'dup', { expiryInterval: 60 });
    subscribe(broker, old.session, 't');
    const taker = await connect(broker, 'dup', { expiryInterval: 60 });
    assert.equal(old.owner.kicked, 0x8e);
    assert.equal(taker.present, true);
    assert.equal(broker.session('dup')?.owner, taker.owner);
    await publish(broker, 't', 'to the new one');
    assert.deepEqual(taker.owner.payloads(), ['to the new one']);
    assert.deepEqual(old.owner.payloads(), []);
    assert.deepEqual(bed.points('dup'), ['session.created', 'session.takenover', 'session.resumed']);
  });

  it('ends a session when its connection closes without expiry, and a persistent one once its expiry interval passed', async () => {
    const brief = await connect(broker, 'brief');
    brief.owner.close();
    assert.equal(broker.session('brief'), undefined);
    assert.deepEqual(bed.points('brief'), ['session.created', 'session.terminated:normal']);
    const lasting = await connect(broker, 'lasting', { expiryInterval: 1 });
    lasting.owner.close();
    assert.ok(broker.session('lasting'), 'kept while its expiry interval runs');
    await sleep(1300);
    assert.equal(broker.session('lasting'), undefined);
    assert.deepEqual(bed.points('lasting'), ['session.created', 'session.terminated:expired']);
  });

  it('publishes a delayed will once its delay passed, and not when the client reconnected in time [MQTT-3.1.3-9]', async () => {
    const watcher = await connect(broker, 'watcher');
    subscribe(broker, watcher.session, 'wills/#');
    const will = (id: string): Will => ({ message: newMessage(`wills/${id}`, Buffer.from(`${id} gone`), 1, false, id), delaySeconds: 1 });
    const back = await connect(broker, 'back', { expiryInterval: 60, will: will('back') });
    back.owner.close();
    const control = await connect(broker, 'control', { expiryInterval: 60, will: will('control') });
    control.owner.close();
    await connect(broker, 'back', { expiryInterval: 60 });
    await sleep(1400);
    assert.deepEqual(watcher.owner.payloads(), ['control gone'], 'the reconnect cancelled the will; the control will of the same delay fired');
  });

  it('counts a message nobody subscribed to as dropped (no_subscribers) and tells message.dropped', async () => {
    await publish(broker, 'nobody/here', 'lost');
    assert.equal(broker.metrics['messages.dropped.no_subscribers'], 1);
    const dropped = bed.calls.filter(([p]) => p === 'message.dropped');
    assert.equal(dropped.length, 1);
    assert.equal((dropped[0]![1][0] as { topic: string }).topic, 'nobody/here');
    assert.equal(dropped[0]![1][1], 'no_subscribers');
  });

  it('restores a persistent session in a new Broker over the same backbone: unacknowledged messages again (DUP, same ids), then what was published meanwhile', async () => {
    const sub = await connect(broker, 'durable', { expiryInterval: 300 });
    subscribe(broker, sub.session, 'd/#');
    await publish(broker, 'd/1', 'in flight');
    const [inflight] = sub.owner.publishes;
    assert.equal(inflight?.payload, 'in flight');
    sub.owner.close();
    await publish(broker, 'd/2', 'while away 1');
    await publish(broker, 'd/3', 'while away 2');
    broker = await bed.restart();
    assert.equal(broker.sessionCount, 1);
    const again = await connect(broker, 'durable', { expiryInterval: 300 });
    assert.equal(again.present, true);
    assert.deepEqual(again.owner.payloads(), ['in flight', 'while away 1', 'while away 2']);
    assert.deepEqual(again.owner.publishes[0], { ...inflight, dup: true });
    assert.deepEqual(bed.points('durable'), ['session.resumed']);
  });
});

describe('replaying a session taken over from a live connection', () => {
  const bed = new TestBed();
  after(() => bed.close());

  /** Local routing that keeps the core it was started with, for restoreSession and replay. */
  class CoreKeeper extends LocalRouting {
    kept!: BrokerCore;
    override start(core: BrokerCore): Promise<void> {
      this.kept = core;
      return super.start(core);
    }
  }

  it('sends what follows the cursor with DUP = 1 only when the record still names an owner (that live connection may have sent more than its last record shows)', async () => {
    const routing = new CoreKeeper();
    const broker = await bed.start(routing);
    for (const p of ['in flight', 'maybe sent', 'also maybe sent']) await publish(broker, 'r/1', p);
    const options = { qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
    const resumed = async (clientId: string, owner: string | null): Promise<RecordingOwner> => {
      const record = { clientId, owner, protocolVersion: 5, expiryInterval: 300, subscriptions: [['r/#', options]] as [string, typeof options][], cursor: 1, inflight: [[0, 7, 1, 1]] as [number, number, QoS, 1 | 2][], awaitingRel: [], disconnectedAt: null };
      const r = restoreSession(routing.kept, record, Date.now());
      await replay(routing.kept, new Map([[clientId, r]]));
      const conn = new RecordingOwner(broker, r.session);
      r.session.attach(conn, 100);
      return conn;
    };
    const taken = await resumed('taken-over', 'gateway-a');
    assert.deepEqual(taken.publishes.map((p) => [p.payload, p.packetId, p.dup]), [['in flight', 7, true], ['maybe sent', 8, true], ['also maybe sent', 9, true]]);
    const offline = await resumed('was-offline', null);
    assert.deepEqual(offline.publishes.map((p) => [p.payload, p.packetId, p.dup]), [['in flight', 7, true], ['maybe sent', 8, false], ['also maybe sent', 9, false]]);
  });
});

describe('broker core with an injected routing strategy', () => {
  const bed = new TestBed();
  after(() => bed.close());

  it('hands every appended message to the routing strategy, with its log offset, and routes nothing itself', async () => {
    const routed: Message[] = [];
    const routing: RoutingStrategy = { start: () => Promise.resolve(), stop: () => Promise.resolve(), route: (m) => void routed.push(m) };
    const broker = await bed.start(routing);
    const sub = await connect(broker, 's');
    subscribe(broker, sub.session, 't');
    await publish(broker, 't', 'one');
    await publish(broker, 't', 'two');
    assert.deepEqual(routed.map((m) => [m.payload.toString(), m.offset]), [['one', 0], ['two', 1]]);
    assert.deepEqual(sub.owner.publishes, []);
    assert.equal(broker.metrics['messages.dropped.no_subscribers'], 0);
  });
});
