// The EMQX-style add-ons: $SYS topics and client events, delayed publish ($delayed/<s>/<topic>,
// durable across restarts), auto-subscribe, topic rewrite, and their configuration errors.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerProcess, ROOT, startBroker, tempDir } from '../helpers/broker';
import { end, Received } from '../helpers/clients';
import { RawClient } from '../helpers/raw';
import { metric, uniqueTopic, waitForMessage, waitForPayload, waitForTopic, clientTracker } from '../helpers/util';

const NODE = `systest-${process.pid}@127.0.0.1`;
const SYS = `$SYS/brokers/${NODE}`;
const VERSION = (require(join(ROOT, 'services', 'cli', 'package.json')) as { version: string }).version;

const REWRITE = [
  // Earlier rules lose to later ones whose source_topic also matches.
  { action: 'publish', source_topic: 'rw/nm/#', re: '^rw/nm/(.+)$', dest_topic: 'rw/fallback/$1' },
  { action: 'publish', source_topic: 'rw/nm/#', re: '^rw/nm/x/(.+)$', dest_topic: 'rw/nmout/$1' },
  { action: 'publish', source_topic: 'rw/pub/#', re: '^rw/pub/([^/]+)/(.+)$', dest_topic: 'rw/out/$2/$1' },
  { action: 'subscribe', source_topic: 'rw/sub/#', re: '^rw/sub/(.+)$', dest_topic: 'rw/real/$1' },
  { action: 'all', source_topic: 'rw/order/#', re: '^rw/order/(.+)$', dest_topic: 'rw/first/$1' },
  { action: 'all', source_topic: 'rw/order/#', re: '^rw/order/(.+)$', dest_topic: 'rw/second/$1' },
  { action: 'publish', source_topic: 'rw/cid/+', re: '^rw/cid/(.+)$', dest_topic: 'rw/cid-out/${clientid}/$1' },
];

const dataDir = tempDir();
let b: BrokerProcess;
const { client, clients, raws } = clientTracker(() => b.url);
const ENV: Record<string, string> = {
  TRIBUTARY_NODE__NAME: NODE,
  TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '1s',
  TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '1s',
  TRIBUTARY_AUTO_SUBSCRIBE__TOPICS: JSON.stringify([
    { topic: 'c/${clientid}', qos: 1 },
    { topic: 'u/${username}/#', qos: 0 },
  ]),
  TRIBUTARY_REWRITE: JSON.stringify(REWRITE),
};

before(async () => {
  b = await startBroker({ dataDir, env: ENV });
});
after(async () => {
  if (b?.proc.exitCode === null) await b.stop();
  rmSync(dataDir, { recursive: true, force: true });
});


let ids = 0;
const cid = (name: string): string => `${name}-${process.pid}-${++ids}`;
const topics = (msgs: Received[]): string[] => msgs.map((m) => m.topic);

describe('$SYS topics', () => {
  test(`$SYS/brokers/<node>/{version,sysdescr,uptime,datetime}, stats and metrics arrive, named after node.name`, async () => {
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync(`${SYS}/#`, { qos: 0 });
    await s.client.subscribeAsync('$SYS/brokers', { qos: 0 });

    const version = await waitForTopic(s.inbox, `${SYS}/version`);
    assert.equal(version.payload.toString(), VERSION);
    assert.equal(version.packet.retain, true, 'version is retained');
    const sysdescr = await waitForTopic(s.inbox, `${SYS}/sysdescr`);
    assert.match(sysdescr.payload.toString(), /Tributary/);
    assert.equal((await waitForTopic(s.inbox, '$SYS/brokers')).payload.toString(), NODE);

    // sys_heartbeat_interval = sys_msg_interval = 1 s: these arrive long before the defaults (30 s, 60 s) would
    // send them; the waits allow 20 s so a slow box does not fail them.
    const uptime = await waitForTopic(s.inbox, `${SYS}/uptime`, 20_000);
    assert.match(uptime.payload.toString(), /^(\d+ (days|hours|minutes), )*\d+ seconds$/);
    const datetime = await waitForTopic(s.inbox, `${SYS}/datetime`, 20_000);
    const when = Date.parse(datetime.payload.toString());
    assert.ok(Math.abs(when - Date.now()) < 5000, `datetime ${datetime.payload.toString()} is now`);
    const conns = await waitForTopic(s.inbox, `${SYS}/stats/connections/count`, 20_000);
    assert.ok(Number(conns.payload.toString()) >= 1, `stats/connections/count = ${conns.payload.toString()} counts this client`);
    const received = await waitForTopic(s.inbox, `${SYS}/metrics/messages/received`, 20_000);
    assert.match(received.payload.toString(), /^\d+$/);
    await waitForTopic(s.inbox, `${SYS}/stats/subscriptions/count`, 20_000);

    // A second heartbeat (the interval repeats; a one-off would not).
    const beats = (): Received[] => s.inbox.messages.filter((m) => m.topic === `${SYS}/uptime`);
    await waitForMessage(s.inbox, () => beats().length >= 2, 'a second uptime heartbeat', 20_000);
    assert.equal(s.inbox.messages.filter((m) => m.topic === `${SYS}/version`).length, 1, 'version is sent once (retained), not per interval');
  });

  test('metrics/messages/received follows client publishes', async () => {
    const s = await client();
    await s.client.subscribeAsync(`${SYS}/metrics/messages/received`, { qos: 0 });
    const first = Number((await s.inbox.waitFor(1, 4000))[0]!.payload.toString());
    const pub = await client();
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(uniqueTopic('sys/count'), 'x', { qos: 1 });
    const later = await waitForMessage(s.inbox, (m) => Number(m.payload.toString()) >= first + 5, 'a count up by 5', 4000);
    assert.ok(Number(later.payload.toString()) >= first + 5);
  });

  test('clients/<clientid>/connected and /disconnected carry EMQX-style JSON', async () => {
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync(`${SYS}/clients/+/connected`, { qos: 1 });
    await s.client.subscribeAsync(`${SYS}/clients/+/disconnected`, { qos: 1 });

    const id5 = cid('ev5');
    const t0 = Date.now();
    const c5 = await client({ protocolVersion: 5, clientId: id5, username: 'alice', password: Buffer.from('pw'), keepalive: 42, properties: { sessionExpiryInterval: 30 } });
    const conn = JSON.parse((await waitForTopic(s.inbox, `${SYS}/clients/${id5}/connected`)).payload.toString()) as Record<string, unknown>;
    assert.equal(conn.clientid, id5);
    assert.equal(conn.username, 'alice');
    assert.equal(conn.ipaddress, '127.0.0.1');
    assert.equal(conn.proto_ver, 5);
    assert.equal(conn.keepalive, 42);
    assert.equal(conn.clean_start, true);
    assert.equal(conn.expiry_interval, 30);
    assert.ok(typeof conn.connected_at === 'number' && conn.connected_at >= t0 - 1000 && conn.connected_at <= Date.now() + 1000, `connected_at ${conn.connected_at}`);
    assert.equal('password' in conn, false, 'no password in the event');

    await c5.client.endAsync();
    const disc = JSON.parse((await waitForTopic(s.inbox, `${SYS}/clients/${id5}/disconnected`)).payload.toString()) as Record<string, unknown>;
    assert.equal(disc.clientid, id5);
    assert.equal(disc.username, 'alice');
    assert.equal(disc.ipaddress, '127.0.0.1');
    assert.equal(disc.proto_ver, 5);
    assert.ok(typeof disc.disconnected_at === 'number' && disc.disconnected_at >= (conn.connected_at as number));

    // 3.1.1 without a user name; the socket just drops.
    const id4 = cid('ev4');
    const r = await RawClient.connected(b.mqttPort, id4, 4);
    raws.push(r);
    const conn4 = JSON.parse((await waitForTopic(s.inbox, `${SYS}/clients/${id4}/connected`)).payload.toString()) as Record<string, unknown>;
    assert.equal(conn4.proto_ver, 4);
    assert.equal(conn4.username, null);
    assert.equal(conn4.clean_start, true);
    r.destroy();
    const disc4 = JSON.parse((await waitForTopic(s.inbox, `${SYS}/clients/${id4}/disconnected`)).payload.toString()) as Record<string, unknown>;
    assert.equal(disc4.clientid, id4);
    assert.equal(disc4.proto_ver, 4);
  });

  test('a client id with + or # produces no event (its topic name would contain wildcards [MQTT-3.3.2-2])', async () => {
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync(`${SYS}/clients/#`, { qos: 1 });
    for (const id of ['wild+card', 'hash#tag', '+', '#']) raws.push(await RawClient.connected(b.mqttPort, id, 4));
    const marker = cid('after-wild');
    raws.push(await RawClient.connected(b.mqttPort, marker, 4));
    await waitForTopic(s.inbox, `${SYS}/clients/${marker}/connected`);
    const wild = topics(s.inbox.messages).filter((t) => /[+#]/.test(t));
    assert.deepEqual(wild, [], 'no PUBLISH with a wildcard in its topic name');
  });

  test('# and +/... do not match $SYS topics; an explicit $SYS subscription beside them does', async () => {
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync('#', { qos: 0, properties: { subscriptionIdentifier: 1 } });
    await s.client.subscribeAsync('+/brokers/#', { qos: 0, properties: { subscriptionIdentifier: 3 } });
    await s.client.subscribeAsync(`${SYS}/uptime`, { qos: 0, properties: { subscriptionIdentifier: 2 } });
    // Two heartbeats: at least one was routed after all three subscriptions existed.
    const beats = (): Received[] => s.inbox.messages.filter((m) => m.topic === `${SYS}/uptime`);
    await waitForMessage(s.inbox, () => beats().length >= 2, 'two uptime heartbeats', 5000);
    const sys = s.inbox.messages.filter((m) => m.topic.startsWith('$SYS'));
    assert.deepEqual([...new Set(topics(sys))], [`${SYS}/uptime`], 'only the explicitly subscribed $SYS topic');
    for (const m of sys) assert.equal(m.packet.properties?.subscriptionIdentifier, 2, 'delivered through the $SYS subscription only');
  });
});

describe('delayed publish', () => {
  test('$delayed/2/t arrives on t after about 2 s, not before; nothing is published on $delayed/...', async () => {
    const topic = uniqueTopic('dl/t');
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync(topic, { qos: 1 });
    await s.client.subscribeAsync('$delayed/#', { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    const t0 = Date.now();
    await pub.client.publishAsync(`$delayed/2/${topic}`, 'later', { qos: 1, properties: { userProperties: { k: 'v' } } });
    const m = await waitForPayload(s.inbox, 'later', 20_000);
    const elapsed = Date.now() - t0;
    // Not before its delay; how late a slow box delivers it is not bounded here.
    assert.ok(elapsed >= 1900, `arrived after ${elapsed} ms, expected >= 1900`);
    assert.equal(m.topic, topic);
    assert.equal(m.packet.qos, 1);
    assert.deepEqual({ ...m.packet.properties?.userProperties }, { k: 'v' }, 'properties travel with the delayed message');
    assert.deepEqual(topics(s.inbox.messages), [topic], 'nothing on $delayed/#');
  });

  test('$delayed/0/t arrives at once; messages are ordered by due time', async () => {
    const topic = uniqueTopic('dl/order');
    const s = await client();
    await s.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client();
    await pub.client.publishAsync(`$delayed/1/${topic}`, 'one', { qos: 1 });
    await pub.client.publishAsync(`$delayed/0/${topic}`, 'zero', { qos: 1 });
    await s.inbox.waitFor(2, 5000);
    assert.deepEqual(s.inbox.messages.map((m) => m.payload.toString()), ['zero', 'one']);
  });

  test('an invalid $delayed topic is delivered nowhere', async () => {
    const topic = uniqueTopic('dl/bad');
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync(topic, { qos: 1 });
    await s.client.subscribeAsync(`x/${topic}`, { qos: 1 });
    await s.client.subscribeAsync('$delayed/#', { qos: 1 });
    const pub = await client();
    const dropped = await metric(b, 'messages.dropped.no_subscribers');
    const bad = [`$delayed/x/${topic}`, `$delayed/-1/${topic}`, `$delayed/1.5/${topic}`, `$delayed/99999999/${topic}`, '$delayed/2', `$delayed//${topic}`];
    for (const t of bad) await pub.client.publishAsync(t, `bad ${t}`, { qos: 1 });
    // Then a valid one: by the time it arrives, anything routed from the bad ones would have too.
    await pub.client.publishAsync(`$delayed/0/${topic}`, 'marker', { qos: 1 });
    await waitForPayload(s.inbox, 'marker', 5000);
    assert.deepEqual(s.inbox.messages.map((m) => m.payload.toString()), ['marker']);
    assert.ok((await metric(b, 'messages.dropped.no_subscribers')) >= dropped + bad.length, 'counted as dropped');
    const warned = b.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('invalid $delayed topic')).map((l) => l.topic);
    for (const t of bad) assert.ok(warned.includes(t), `logged ${t}`);
  });
});

describe('auto-subscribe', () => {
  test('a client that never subscribes gets c/<its id> at QoS 1 (and its retained message after CONNACK)', async () => {
    const id = cid('auto');
    const pub = await client();
    await pub.client.publishAsync(`c/${id}`, 'retained-before', { qos: 1, retain: true });
    const c = await client({ clientId: id, protocolVersion: 5 });
    const retained = await waitForPayload(c.inbox, 'retained-before');
    assert.equal(retained.packet.retain, true);
    await pub.client.publishAsync(`c/${id}`, 'q2', { qos: 2 });
    await pub.client.publishAsync(`c/${id}`, 'q1', { qos: 1 });
    await pub.client.publishAsync(`c/${id}`, 'q0', { qos: 0 });
    await pub.client.publishAsync(`c/${id}-other`, 'not-mine', { qos: 1 });
    await pub.client.publishAsync(`c/${id}`, 'end', { qos: 1 });
    await waitForPayload(c.inbox, 'end');
    const got = new Map(c.inbox.messages.map((m) => [m.payload.toString(), m.packet.qos]));
    assert.deepEqual(Object.fromEntries(got), { 'retained-before': 1, q2: 1, q1: 1, q0: 0, end: 1 }, 'subscription QoS 1 caps delivery; another id’s topic is not received');
    await pub.client.publishAsync(`c/${id}`, '', { qos: 1, retain: true });
  });

  for (const wild of ['#', '+']) {
    test(`a client id or user name "${wild}" does not become a wildcard subscription over other clients' topics`, async () => {
      const c = await client({ clientId: wild, protocolVersion: 5 });
      const u = await client({ clientId: cid('wild-user'), username: wild });
      const marker = uniqueTopic('auto/marker');
      await c.client.subscribeAsync(marker, { qos: 1 });
      await u.client.subscribeAsync(marker, { qos: 1 });
      const pub = await client();
      await pub.client.publishAsync(`c/${cid('victim')}`, 'private', { qos: 1 });
      await pub.client.publishAsync(`u/${cid('victim')}/inbox`, 'private', { qos: 1 });
      await pub.client.publishAsync(marker, 'marker', { qos: 1 });
      await waitForPayload(c.inbox, 'marker');
      await waitForPayload(u.inbox, 'marker');
      assert.deepEqual(topics(c.inbox.messages), [marker]);
      assert.deepEqual(topics(u.inbox.messages), [marker]);
    });
  }

  test('${username} is filled in too', async () => {
    const user = cid('user');
    const c = await client({ clientId: cid('auto-u'), username: user });
    const pub = await client();
    await pub.client.publishAsync(`u/${user}/inbox`, 'hi', { qos: 1 });
    const m = await waitForPayload(c.inbox, 'hi');
    assert.equal(m.topic, `u/${user}/inbox`);
    assert.equal(m.packet.qos, 0);
  });
});

describe('topic rewrite', () => {
  test('publish rewrite: rw/pub/a/b is published as rw/out/b/a ($1, $2 captures), never under its original name', async () => {
    const tag = `${process.pid}-${++ids}`;
    const s = await client({ protocolVersion: 5 });
    await s.client.subscribeAsync('rw/#', { qos: 1 });
    const pub = await client();
    await pub.client.publishAsync(`rw/pub/${tag}/b/c`, 'p', { qos: 1 });
    const m = await waitForPayload(s.inbox, 'p');
    assert.equal(m.topic, `rw/out/b/c/${tag}`);
    assert.equal(s.inbox.messages.length, 1);
  });

  test('${clientid} in dest_topic', async () => {
    const id = cid('rwcid');
    const s = await client();
    await s.client.subscribeAsync('rw/cid-out/#', { qos: 1 });
    const pub = await client({ clientId: id });
    await pub.client.publishAsync('rw/cid/x', 'cid', { qos: 1 });
    assert.equal((await waitForPayload(s.inbox, 'cid')).topic, `rw/cid-out/${id}/x`);
  });

  test('subscribe rewrite: a subscription to rw/sub/x is a subscription to rw/real/x, and unsubscribing rw/sub/x removes it', async () => {
    const tag = `${process.pid}-${++ids}`;
    const s = await client({ protocolVersion: 5 });
    const [granted] = await s.client.subscribeAsync(`rw/sub/${tag}`, { qos: 1 });
    assert.equal(granted?.qos, 1);
    const pub = await client();
    await pub.client.publishAsync(`rw/sub/${tag}`, 'literal', { qos: 1 }); // publish is not rewritten by this rule
    await pub.client.publishAsync(`rw/real/${tag}`, 'real', { qos: 1 });
    const m = await waitForPayload(s.inbox, 'real');
    assert.equal(m.topic, `rw/real/${tag}`);
    assert.deepEqual(s.inbox.messages.map((x) => x.payload.toString()), ['real'], 'the literal topic has no subscriber');

    // mqtt-packet puts a 5.0 UNSUBACK's reason codes in `granted`.
    const unsuback = (await s.client.unsubscribeAsync(`rw/sub/${tag}`)) as { granted?: number[] } | undefined;
    assert.deepEqual(unsuback?.granted, [0], 'it existed (0x00, not 0x11)');
    await pub.client.publishAsync(`rw/real/${tag}`, 'gone', { qos: 1 });
    // A marker on a plain subscription shows whether "gone" would have arrived.
    await s.client.subscribeAsync(`plain/${tag}`, { qos: 1 });
    await pub.client.publishAsync(`plain/${tag}`, 'marker', { qos: 1 });
    await waitForPayload(s.inbox, 'marker');
    assert.deepEqual(s.inbox.messages.map((x) => x.payload.toString()), ['real', 'marker']);
  });

  test('the later rule wins when both match (action all: publishes and subscriptions)', async () => {
    const tag = `${process.pid}-${++ids}`;
    const s = await client();
    await s.client.subscribeAsync('rw/first/#', { qos: 1 });
    await s.client.subscribeAsync('rw/second/#', { qos: 1 });
    const t = await client();
    await t.client.subscribeAsync(`rw/order/${tag}`, { qos: 1 }); // becomes rw/second/<tag>
    const pub = await client();
    await pub.client.publishAsync(`rw/order/${tag}`, 'ordered', { qos: 1 });
    const m = await waitForPayload(s.inbox, 'ordered');
    assert.equal(m.topic, `rw/second/${tag}`);
    assert.equal((await waitForPayload(t.inbox, 'ordered')).topic, `rw/second/${tag}`);
    await pub.client.publishAsync(`rw/order/${tag}`, 'marker', { qos: 1 });
    await waitForPayload(s.inbox, 'marker');
    assert.deepEqual(topics(s.inbox.messages), [`rw/second/${tag}`, `rw/second/${tag}`], 'nothing under rw/first');
  });

  test('the first matching rule decides: when its regex does not match, the topic stays unchanged (no fall-through to earlier rules)', async () => {
    const tag = `${process.pid}-${++ids}`;
    const s = await client();
    await s.client.subscribeAsync('rw/#', { qos: 1 });
    const pub = await client();
    await pub.client.publishAsync(`rw/nm/x/${tag}`, 'regex-match', { qos: 1 });
    await pub.client.publishAsync(`rw/nm/y/${tag}`, 'no-regex-match', { qos: 1 });
    await s.inbox.waitFor(2);
    assert.deepEqual(
      s.inbox.messages.map((m) => [m.payload.toString(), m.topic]),
      [
        ['regex-match', `rw/nmout/${tag}`],
        ['no-regex-match', `rw/nm/y/${tag}`],
      ],
    );
  });

  test('topics no rule matches are untouched', async () => {
    const topic = uniqueTopic('norw');
    const s = await client();
    await s.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client();
    await pub.client.publishAsync(topic, 'same', { qos: 1 });
    assert.equal((await waitForPayload(s.inbox, 'same')).topic, topic);
  });
});

describe('configuration errors', () => {
  const cases: [string, string, string][] = [
    ['TRIBUTARY_REWRITE', JSON.stringify([{ action: 'publish', source_topic: 'a/#', re: '(unclosed', dest_topic: 'b' }]), 'rewrite'],
    ['TRIBUTARY_REWRITE', 'not json', 'rewrite'],
    ['TRIBUTARY_REWRITE', JSON.stringify([{ action: 'sideways', source_topic: 'a/#', re: 'a', dest_topic: 'b' }]), 'rewrite'],
    ['TRIBUTARY_AUTO_SUBSCRIBE__TOPICS', '[{"topic": 5}]', 'auto_subscribe.topics'],
  ];
  for (const [name, value, key] of cases) {
    test(`${name}=${value} stops start-up naming ${key}`, async () => {
      const dir = tempDir();
      try {
        await assert.rejects(startBroker({ dataDir: dir, env: { [name]: value } }), (err: Error) => {
          assert.match(err.message, /broker exited with [1-9]/);
          assert.ok(err.message.includes(key), `names ${key}:\n${err.message}`);
          assert.ok(err.message.includes(name), `names ${name}:\n${err.message}`);
          return true;
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

// Last: restarts the broker.
describe('delayed publish across a restart', () => {
  test('a delayed message accepted before a restart is published after it', async () => {
    const topic = uniqueTopic('dl/restart');
    const id = cid('dl-restart');
    const s = await client({ clientId: id, clean: false, protocolVersion: 4 });
    await s.client.subscribeAsync(topic, { qos: 1 });
    await s.client.endAsync();
    const pub = await client();
    const t0 = Date.now();
    // PUBACK means it is durable.
    await pub.client.publishAsync(`$delayed/3/${topic}`, 'survivor', { qos: 1 });
    await end(...clients.splice(0));
    await b.stop();
    b = await startBroker({ dataDir, env: ENV });
    const restored = b.logs.find((l) => l.msg === 'restored delayed messages');
    assert.ok(restored && (restored.delayed as number) >= 1, 'the new process restored it');
    const again = await client({ clientId: id, clean: false, protocolVersion: 4 });
    const m = await waitForPayload(again.inbox, 'survivor', 8000);
    assert.equal(m.topic, topic);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 2900, `arrived ${elapsed} ms after publishing, expected >= 2900`);
    // Delivered once: the delayed entry was removed after publishing.
    await again.client.publishAsync(topic, 'marker', { qos: 1 });
    await waitForPayload(again.inbox, 'marker');
    assert.deepEqual(again.inbox.messages.map((x) => x.payload.toString()), ['survivor', 'marker']);
  });
});
