import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { IClientOptions, MqttClient } from 'mqtt';
import { Backbone, ConsumedRecord, Consumer, EmbeddedBackbone } from '@tributary/backbone';
import { loadConfig, silentLogger } from '@tributary/common';
import { authConfigFragment, AuthService } from '@tributary/auth';
import { BackboneSessionStore, Broker, Gateway, gatewayConfigSchema, MESSAGES_TOPIC, RetainedStore } from '@tributary/gateway';
import { decodeMessage, MESSAGE_HEADERS, newMessage, recordHeaders, SCHEMA_HEADER, setPublisherHeaders } from '@tributary/mqtt';
import { decodeEvent, EVENT_SOURCES, EventInterest, EVENTS_TOPIC, eventDecodeStats, EventsService, messageColumns } from '../src/events';
import type { ValueMap } from '@tributary/rulesql';

const NODE = 'events@test';

/** Which sources rules want: what the rule engine will keep; here the test sets it. */
class Interest implements EventInterest {
  private sources = new Set<string>();
  private readonly listeners: (() => void)[] = [];
  wants(source: string): boolean {
    return this.sources.has(source);
  }
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }
  set(sources: readonly string[]): void {
    this.sources = new Set(sources);
    for (const cb of this.listeners) cb();
  }
}

/** Every record of a topic as it arrives; tests wait for the ones they expect. */
class Reader {
  readonly records: ConsumedRecord[] = [];
  private waiters: (() => void)[] = [];
  consumer!: Consumer;

  static async open(backbone: Backbone, topic: string): Promise<Reader> {
    const r = new Reader();
    r.consumer = await backbone.consume({
      topic,
      from: 'earliest',
      eachBatch: (records) => {
        r.records.push(...records);
        for (const w of r.waiters.splice(0)) w();
      },
    });
    return r;
  }

  /** Resolves with what `pick` returns once it returns something (10 s at most). */
  async until<T>(pick: (records: ConsumedRecord[]) => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = pick(this.records);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  events(): { source: string; columns: ValueMap }[] {
    return this.records.map((r) => decodeEvent(r)!).filter((e) => e !== undefined);
  }

  /** The first event of `source` matching `where`, once it is there. */
  event(source: string, where: (c: ValueMap) => boolean = () => true): Promise<ValueMap> {
    return this.until(() => this.events().find((e) => e.source === source && where(e.columns))?.columns, source);
  }
}

interface TestNode {
  backbone: EmbeddedBackbone;
  broker: Broker;
  events: EventsService;
  interest: Interest;
  url: string;
  port: number;
  events$: Reader;
  stop(): Promise<void>;
}

/** A real broker and its MQTT listener over an embedded backbone, with the events service (and authentication when configured). */
async function startNode(opts: { auth?: Record<string, unknown>; maxPending?: number } = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-events-'));
  const { config } = loadConfig(gatewayConfigSchema, {
    env: {},
    overrides: {
      'node.name': NODE,
      'node.data_dir': dir,
      'listeners.tcp.default.bind': '127.0.0.1:0',
      'listeners.ssl.default.enable': false,
      'listeners.ws.default.enable': false,
      'listeners.wss.default.enable': false,
    },
  });
  const backbone = new EmbeddedBackbone({ dataDir: dir, fsync: 'never' });
  await backbone.start();
  await backbone.ensureTopics([
    { name: MESSAGES_TOPIC, cleanup: 'delete' },
    { name: 'sessions', cleanup: 'compact' },
    { name: 'retained', cleanup: 'compact' },
    { name: 'delayed', cleanup: 'compact' },
  ]);
  const broker = new Broker({ config, backbone, sessions: await BackboneSessionStore.open(backbone), retained: await RetainedStore.open(backbone), logger: silentLogger });
  await broker.start();
  let auth: AuthService | undefined;
  if (opts.auth) {
    const { config: authConfig } = loadConfig(authConfigFragment.schema, { env: {}, overrides: opts.auth });
    auth = new AuthService({ config: authConfig, backbone, hooks: broker.hooks, logger: silentLogger, nodeName: NODE, dataDir: dir });
    await auth.start();
  }
  const interest = new Interest();
  const events = new EventsService({ hooks: broker.hooks, backbone, node: NODE, interest, log: silentLogger, maxPending: opts.maxPending });
  await events.start();
  const gateway = new Gateway(config, broker, silentLogger);
  await gateway.start();
  const port = gateway.listeners.find((l) => l.name === 'tcp:default')!.port;
  const events$ = await Reader.open(backbone, EVENTS_TOPIC);
  return {
    backbone,
    broker,
    events,
    interest,
    port,
    url: `mqtt://127.0.0.1:${port}`,
    events$,
    async stop() {
      await gateway.stop();
      await events$.consumer.stop();
      await events.stop();
      await auth?.stop();
      await broker.stop();
      await backbone.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function connect(url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

/** The CONNACK reason code of a refused CONNECT. */
function refused(url: string, opts: IClientOptions): Promise<number> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  return new Promise((resolve, reject) => {
    c.once('connect', () => reject(new Error('connected')));
    c.once('error', (err: Error & { code?: number }) => {
      c.end(true);
      resolve(err.code ?? -1);
    });
  });
}

/** Asserts that `cols[key]` is a time between `from` and now, then leaves it out (so the rest can be compared exactly). */
function time(cols: ValueMap, from: number, ...keys: string[]): ValueMap {
  const rest = { ...cols };
  for (const k of keys) {
    const t = rest[k];
    assert.ok(typeof t === 'number' && t >= from && t <= Date.now(), `${k} = ${String(t)} is not a time since the test began`);
    delete rest[k];
  }
  return rest;
}

/** Hook points the events service would listen on. */
const POINTS = ['client.connected', 'client.disconnected', 'client.connack', 'client.check_authn_complete', 'client.check_authz_complete', 'session.subscribed', 'session.unsubscribed', 'message.delivered', 'message.acked', 'message.dropped', 'delivery.dropped'] as const;

describe('the events topic: every $events source with EMQX field names, from a real broker', () => {
  let node: TestNode;
  let dir: string;
  const began = Date.now();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tributary-events-auth-'));
    writeFileSync(join(dir, 'users.csv'), 'user_id,password,is_superuser\nalice,secret,false\n');
    writeFileSync(join(dir, 'acl.conf'), '{deny, all, publish, ["secret/#"]}.\n{allow, all}.\n');
    node = await startNode({
      auth: {
        authentication: [{ mechanism: 'password_based', backend: 'built_in_database', bootstrap_file: join(dir, 'users.csv') }],
        'authorization.sources': [{ type: 'file', path: join(dir, 'acl.conf') }],
      },
    });
    node.interest.set(EVENT_SOURCES);
  });
  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the eleven sources and listens only on what interest wants', () => {
    assert.deepEqual(EVENT_SOURCES, [
      '$events/client_connected',
      '$events/client_disconnected',
      '$events/client_connack',
      '$events/client_check_authn_complete',
      '$events/client_check_authz_complete',
      '$events/session_subscribed',
      '$events/session_unsubscribed',
      '$events/message_delivered',
      '$events/message_acked',
      '$events/message_dropped',
      '$events/delivery_dropped',
    ]);
    for (const p of POINTS) assert.ok(node.broker.hooks.names(p).includes('rules.events'), p);
  });

  it('a client session: authn, connack, connected, subscribed, authz, delivered, acked, dropped, unsubscribed, disconnected', async () => {
    const c = await connect(node.url, {
      protocolVersion: 5,
      clientId: 'ev-1',
      username: 'alice',
      password: 'secret',
      keepalive: 30,
      properties: { receiveMaximum: 20, userProperties: { region: 'eu' } },
    });
    const peername = `127.0.0.1:${(c.stream as unknown as { localPort: number }).localPort}`;
    const sockname = `127.0.0.1:${node.port}`;
    await c.subscribeAsync('t/#', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    const got = new Promise<void>((resolve) => c.once('message', () => resolve()));
    await c.publishAsync('t/1', 'hello', { qos: 1, properties: { contentType: 'text/plain', userProperties: { k: ['a', 'b'] } } });
    await got;
    await c.publishAsync('nobody/home', Buffer.from([0xff, 0xfe]), { qos: 1 });
    await c.publishAsync('secret/x', 'no', { qos: 1 }).catch(() => undefined);
    await c.publishAsync('t/2', 'again', { qos: 0 });
    await c.unsubscribeAsync('t/#');
    await c.endAsync(false, { reasonCode: 0, properties: { reasonString: 'bye' } });
    const ev = node.events$;

    assert.deepStrictEqual(time(await ev.event('$events/client_check_authn_complete', (x) => x.clientid === 'ev-1'), began, 'timestamp'), {
      event: 'client.check_authn_complete',
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      peername,
      reason_code: 'success',
      is_superuser: false,
      is_anonymous: false,
      client_attrs: {},
    });
    const connProps = { 'Receive-Maximum': 20, 'User-Property': { region: 'eu' }, 'User-Property-Pairs': [{ key: 'region', value: 'eu' }] };
    assert.deepStrictEqual(time(await ev.event('$events/client_connack', (x) => x.clientid === 'ev-1'), began, 'timestamp'), {
      event: 'client.connack',
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      reason_code: 'success',
      clean_start: true,
      keepalive: 30,
      expiry_interval: 0,
      conn_props: connProps,
      peername,
      sockname,
      proto_name: 'MQTT',
      proto_ver: 5,
      client_attrs: {},
    });
    assert.deepStrictEqual(time(await ev.event('$events/client_connected', (x) => x.clientid === 'ev-1'), began, 'timestamp', 'connected_at'), {
      event: 'client.connected',
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      peername,
      sockname,
      proto_name: 'MQTT',
      proto_ver: 5,
      keepalive: 30,
      clean_start: true,
      receive_maximum: 20,
      expiry_interval: 0,
      is_bridge: false,
      conn_props: connProps,
      client_attrs: {},
    });
    // The columns of the client's own session events.
    const who = { node: NODE, clientid: 'ev-1', username: 'alice', peerhost: '127.0.0.1', peername, client_attrs: {} };
    assert.deepStrictEqual(time(await ev.event('$events/session_subscribed'), began, 'timestamp'), {
      ...who,
      event: 'session.subscribed',
      topic: 't/#',
      qos: 1,
      sub_props: { 'Subscription-Identifier': 7 },
    });
    const authz = (topic: string, source: string) => ev.event('$events/client_check_authz_complete', (x) => x.topic === topic && x.authz_source === source);
    const authzCols = { ...who, event: 'client.check_authz_complete' };
    assert.deepStrictEqual(time(await authz('t/#', 'file'), began, 'timestamp'), { ...authzCols, topic: 't/#', action: 'subscribe', authz_source: 'file', result: 'allow' });
    assert.deepStrictEqual(time(await authz('secret/x', 'file'), began, 'timestamp'), { ...authzCols, topic: 'secret/x', action: 'publish', authz_source: 'file', result: 'deny' });
    assert.equal((await authz('t/1', 'file')).result, 'allow');

    const delivered = time(await ev.event('$events/message_delivered', (x) => x.topic === 't/1'), began, 'timestamp', 'publish_received_at');
    const msgCols = {
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      from_clientid: 'ev-1',
      // The publisher's, known to the process that accepted the message.
      from_username: 'alice',
      peerhost: '127.0.0.1',
      peername,
      payload: 'hello',
      topic: 't/1',
      qos: 1,
      flags: { retain: false, dup: false },
      pub_props: { 'Content-Type': 'text/plain', 'User-Property': { k: 'b' }, 'User-Property-Pairs': [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }] },
      client_attrs: {},
    };
    assert.match(delivered.id as string, /^[0-9A-F]{32}$/);
    assert.deepStrictEqual({ ...delivered, id: 'x' }, { ...msgCols, event: 'message.delivered', id: 'x' });
    const acked = time(await ev.event('$events/message_acked', (x) => x.topic === 't/1'), began, 'timestamp', 'publish_received_at');
    assert.deepStrictEqual(acked, { ...msgCols, event: 'message.acked', id: delivered.id, puback_props: {} });
    // The message.publish rule of the same message gets the same id (from its offset in messages).
    const messages = await Reader.open(node.backbone, MESSAGES_TOPIC);
    const rec = await messages.until((rs) => rs.find((r) => r.key === 't/1'), 'the t/1 record');
    await messages.consumer.stop();
    assert.equal(messageColumns(decodeMessage(rec.value!, rec.offset), rec.headers).id, delivered.id);

    const dropped = await ev.event('$events/message_dropped');
    assert.notEqual(dropped.id, delivered.id);
    assert.deepStrictEqual(time(dropped, began, 'timestamp', 'publish_received_at'), {
      event: 'message.dropped',
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      id: dropped.id,
      reason: 'no_subscribers',
      payload: Buffer.from([0xff, 0xfe]),
      topic: 'nobody/home',
      qos: 1,
      flags: { retain: false, dup: false },
      pub_props: {},
      // The publisher's: the dropped message names who sent it.
      peerhost: '127.0.0.1',
      peername,
      client_attrs: {},
    });
    assert.deepStrictEqual(time(await ev.event('$events/session_unsubscribed'), began, 'timestamp'), { ...who, event: 'session.unsubscribed', topic: 't/#', qos: 1, unsub_props: {} });
    assert.deepStrictEqual(time(await ev.event('$events/client_disconnected', (x) => x.clientid === 'ev-1'), began, 'timestamp', 'connected_at', 'disconnected_at'), {
      event: 'client.disconnected',
      node: NODE,
      clientid: 'ev-1',
      username: 'alice',
      reason: 'normal',
      disconn_props: { 'Reason-String': 'bye' },
      peername,
      sockname,
      proto_name: 'MQTT',
      proto_ver: 5,
      client_attrs: {},
    });
  });

  it('a second check of the same topic is decided by the cache; a wrong password is bad_username_or_password in authn and connack', async () => {
    const c = await connect(node.url, { protocolVersion: 5, clientId: 'ev-2', username: 'alice', password: 'secret' });
    await c.publishAsync('cached/t', 'a', { qos: 1 });
    await c.publishAsync('cached/t', 'b', { qos: 1 });
    await c.endAsync();
    const ev = node.events$;
    assert.equal((await ev.event('$events/client_check_authz_complete', (x) => x.topic === 'cached/t' && x.authz_source === 'cache')).result, 'allow');

    assert.equal(await refused(node.url, { protocolVersion: 5, clientId: 'ev-bad', username: 'alice', password: 'wrong' }), 0x86);
    const authn = await ev.event('$events/client_check_authn_complete', (x) => x.clientid === 'ev-bad');
    assert.equal(authn.reason_code, 'bad_username_or_password');
    assert.equal(authn.is_superuser, false);
    assert.equal((await ev.event('$events/client_connack', (x) => x.clientid === 'ev-bad')).reason_code, 'bad_username_or_password');
    assert.equal((await ev.event('$events/client_disconnected', (x) => x.clientid === 'ev-2')).reason, 'normal');
  });

  it('delivery_dropped: a message larger than the subscriber allows is too_large, with the publisher in from_clientid', async () => {
    const sub = await connect(node.url, { protocolVersion: 5, clientId: 'ev-small', username: 'alice', password: 'secret', properties: { maximumPacketSize: 64 } });
    await sub.subscribeAsync('big/#', { qos: 0 });
    const pub = await connect(node.url, { protocolVersion: 5, clientId: 'ev-big', username: 'alice', password: 'secret' });
    await pub.publishAsync('big/1', Buffer.alloc(200, 0x61), { qos: 1 });
    const d = await node.events$.event('$events/delivery_dropped');
    await sub.endAsync();
    await pub.endAsync();
    assert.equal(d.event, 'delivery.dropped');
    assert.equal(d.reason, 'too_large');
    assert.equal(d.clientid, 'ev-small');
    assert.equal(d.from_clientid, 'ev-big');
    assert.equal(d.topic, 'big/1');
    assert.equal(d.payload, 'a'.repeat(200));
  });

  it('a record it cannot read is undefined and counted: another schema, bytes that are no event', async () => {
    const before = eventDecodeStats.undecodable;
    const base = { topic: EVENTS_TOPIC, partition: 0, offset: 1, key: null, timestamp: 0 };
    assert.equal(decodeEvent({ ...base, value: Buffer.from('x'), headers: { [SCHEMA_HEADER]: 'io.tributary.v9.Event' } }), undefined);
    assert.equal(decodeEvent({ ...base, value: Buffer.from([1, 2, 3]), headers: {} }), undefined);
    assert.equal(decodeEvent({ ...base, value: null, headers: {} }), undefined);
    assert.equal(eventDecodeStats.undecodable, before + 3);
  });
});

describe('interest: nothing is built or appended for sources no rule wants', () => {
  let node: TestNode;
  before(async () => (node = await startNode({ maxPending: 3 })));
  after(() => node.stop());

  it('with no interest no hook is registered and the events topic stays empty; turning one source on records only it', async () => {
    for (const p of POINTS) assert.deepEqual(node.broker.hooks.names(p).filter((n) => n === 'rules.events'), [], p);
    const c = await connect(node.url, { protocolVersion: 5, clientId: 'quiet' });
    await c.subscribeAsync('q/#', { qos: 1 });
    const got = new Promise<void>((resolve) => c.once('message', () => resolve()));
    await c.publishAsync('q/1', 'x', { qos: 1 });
    await got;
    await c.endAsync();
    const check = await Reader.open(node.backbone, EVENTS_TOPIC);
    await check.consumer.caughtUp;
    await check.consumer.stop();
    assert.equal(check.records.length, 0);
    assert.equal(node.events.counters['events.appended'], 0);

    node.interest.set(['$events/client_check_authn_complete']);
    assert.deepEqual(node.events.listened, ['$events/client_check_authn_complete']);
    const c2 = await connect(node.url, { protocolVersion: 4, clientId: 'anon' });
    await c2.publishAsync('q/1', 'y', { qos: 1 });
    await c2.endAsync();
    const authn = await node.events$.event('$events/client_check_authn_complete');
    // No authenticator: anonymous, as EMQX says with authentication off.
    assert.equal(authn.is_anonymous, true);
    assert.equal(authn.reason_code, 'success');
    assert.deepEqual(
      node.events$.events().map((e) => e.source),
      ['$events/client_check_authn_complete'],
    );
    node.interest.set([]);
    assert.deepEqual(node.events.listened, []);
    for (const p of POINTS) assert.ok(!node.broker.hooks.names(p).includes('rules.events'), p);
  });

  it('holds at most maxPending events: one SUBSCRIBE of five filters in one turn records three and counts two dropped', async () => {
    node.interest.set(['$events/session_subscribed']);
    const c = await connect(node.url, { protocolVersion: 5, clientId: 'many' });
    await c.subscribeAsync(['m/1', 'm/2', 'm/3', 'm/4', 'm/5'], { qos: 0 });
    await node.events$.until((rs) => (rs.map((r) => decodeEvent(r)).filter((e) => e?.source === '$events/session_subscribed').length >= 3 ? true : undefined), 'three subscribed events');
    await c.endAsync();
    assert.equal(node.events.counters['events.dropped'], 2);
    const topics = node.events$.events().filter((e) => e.source === '$events/session_subscribed').map((e) => e.columns.topic);
    assert.deepEqual(topics, ['m/1', 'm/2', 'm/3']);
    node.interest.set([]);
  });
});

describe('message columns: publisher headers only while switched on', () => {
  let node: TestNode;
  before(async () => (node = await startNode()));
  after(async () => {
    setPublisherHeaders(false);
    await node.stop();
  });

  it('off (the default): records carry the headers they always did, and recordHeaders returns its frozen constant', async () => {
    const msg = newMessage('a/b', Buffer.from('x'), 0, false, 'c');
    assert.equal(recordHeaders(msg, { username: 'u', peerhost: 'h', peername: 'h:1' }), MESSAGE_HEADERS);
    const c = await connect(node.url, { protocolVersion: 5, clientId: 'plain', username: 'pu' });
    await c.publishAsync('plain/1', 'x', { qos: 1 });
    await c.endAsync();
    const messages = await Reader.open(node.backbone, MESSAGES_TOPIC);
    const rec = await messages.until((rs) => rs.find((r) => r.key === 'plain/1'), 'plain/1');
    await messages.consumer.stop();
    assert.deepEqual(rec.headers, { ...MESSAGE_HEADERS });
    const cols = messageColumns(decodeMessage(rec.value!, rec.offset), rec.headers, 'rules@node');
    assert.equal(cols.username, undefined);
    assert.equal(cols.node, 'rules@node');
  });

  it('on: username, peerhost, peername and node come with the record, and messageColumns gives EMQX columns', async () => {
    setPublisherHeaders(true, NODE);
    const c = await connect(node.url, { protocolVersion: 5, clientId: 'pub-h', username: 'pu' });
    const peername = `127.0.0.1:${(c.stream as unknown as { localPort: number }).localPort}`;
    await c.publishAsync('hdr/1', Buffer.from([0xc3, 0x28]), { qos: 1, retain: true, properties: { messageExpiryInterval: 60, payloadFormatIndicator: false, correlationData: Buffer.from('corr'), responseTopic: 'r/1' } });
    await c.endAsync();
    setPublisherHeaders(false);
    const messages = await Reader.open(node.backbone, MESSAGES_TOPIC);
    const rec = await messages.until((rs) => rs.find((r) => r.key === 'hdr/1'), 'hdr/1');
    await messages.consumer.stop();
    const msg = decodeMessage(rec.value!, rec.offset);
    const cols = messageColumns(msg, rec.headers);
    assert.match(cols.id as string, /^[0-9A-F]{32}$/);
    assert.deepStrictEqual(
      { ...cols, id: 'x' },
      {
        event: 'message.publish',
        id: 'x',
        clientid: 'pub-h',
        username: 'pu',
        payload: Buffer.from([0xc3, 0x28]),
        peerhost: '127.0.0.1',
        peername,
        topic: 'hdr/1',
        qos: 1,
        flags: { retain: true, dup: false },
        pub_props: { 'Message-Expiry-Interval': 60, 'Payload-Format-Indicator': 0, 'Correlation-Data': 'corr', 'Response-Topic': 'r/1' },
        publish_received_at: msg.timestamp,
        timestamp: msg.timestamp,
        node: NODE,
        client_attrs: {},
      },
    );
  });
});
