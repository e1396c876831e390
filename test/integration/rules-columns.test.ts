// The event columns filled from the client and its packets, in a real single node: client_attrs
// (mqtt.client_attrs_init, in events, in message rules, in /api/v5/clients and in ACL
// placeholders), from_username of deliveries, the User-Property of SUBSCRIBE, UNSUBSCRIBE and
// PUBACK (sub_props, unsub_props, puback_props), and the delivery_dropped reasons no_local and
// qos0_msg. Each rule republishes what it selected to ev/..., which one watcher subscribes to.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { RawClient } from '../helpers/raw';
import { clientTracker, Opened, waitForTopic, waitUntil } from '../helpers/util';

const republish = (topic: string, payload: string): { function: string; args: Record<string, unknown> } => ({ function: 'republish', args: { topic, payload, qos: 1 } });

const RULES = {
  conn: { sql: 'SELECT clientid, client_attrs FROM "$events/client_connected"', actions: [republish('ev/connected/${clientid}', '${client_attrs}')] },
  msg: { sql: 'SELECT clientid, client_attrs FROM "attrs/#"', actions: [republish('ev/msg/${clientid}', '${client_attrs}')] },
  deliv: { sql: "SELECT clientid, from_username FROM \"$events/message_delivered\" WHERE topic = 'deliv/x'", actions: [republish('ev/delivered/${clientid}', '${from_username}')] },
  acked: { sql: "SELECT clientid, from_username, puback_props FROM \"$events/message_acked\" WHERE topic = 'deliv/x'", actions: [republish('ev/acked/${clientid}', '${.}')] },
  sub: { sql: "SELECT clientid, sub_props FROM \"$events/session_subscribed\" WHERE topic = 'props/x'", actions: [republish('ev/sub/${clientid}', '${sub_props}')] },
  unsub: { sql: "SELECT clientid, unsub_props FROM \"$events/session_unsubscribed\" WHERE topic = 'props/x'", actions: [republish('ev/unsub/${clientid}', '${unsub_props}')] },
  dropped: { sql: 'SELECT clientid, reason, from_username FROM "$events/delivery_dropped"', actions: [republish('ev/dropped/${reason}/${clientid}', '${from_username}')] },
  mdropped: { sql: "SELECT clientid, username, peerhost, client_attrs, reason FROM \"$events/message_dropped\" WHERE topic = 'nosub/x'", actions: [republish('ev/mdropped/${clientid}', '${reason}|${username}|${peerhost}|${client_attrs.group}')] },
};

const ATTRS_INIT = [
  { expression: "nth(1, tokens(clientid, '-'))", set_as_attr: 'group' },
  { expression: 'user_property.site', set_as_attr: 'site' },
  // Later expressions see earlier attributes.
  { expression: "concat(client_attrs.group, '!')", set_as_attr: 'shout' },
  // An evaluation error leaves the attribute unset.
  { expression: "int('not a number')", set_as_attr: 'broken' },
];

const ACL = `
{allow, all, subscribe, ["ev/#", "deliv/#", "props/#", "nl/#", "q0/#"]}.
{allow, all, subscribe, ["\${client_attrs.group}/#"]}.
{allow, all, publish, ["#"]}.
{deny, all}.
`;

describe('event columns from client attributes and packet properties', () => {
  let b: BrokerProcess;
  let bearer: string;
  let watch: Opened;
  const { client, raws } = clientTracker(() => b.url);
  const dir = tempDir();

  const api = async (path: string): Promise<any> => {
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5${path}`, { headers: { authorization: bearer } });
    assert.equal(res.status, 200, `GET ${path}`);
    return res.json();
  };
  /** The watcher of ev/#, opened per test (clients close after each test). */
  const watcher = async (): Promise<Opened> => {
    const w = await client({ clientId: 'watch', protocolVersion: 5 });
    await w.client.subscribeAsync('ev/#', { qos: 1 });
    return w;
  };

  before(async () => {
    writeFileSync(join(dir, 'acl.conf'), ACL);
    b = await startBroker({
      env: {
        TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'test-pw',
        TRIBUTARY_RULE_ENGINE__RULES: JSON.stringify(RULES),
        TRIBUTARY_MQTT__CLIENT_ATTRS_INIT: JSON.stringify(ATTRS_INIT),
        TRIBUTARY_MQTT__MQUEUE_STORE_QOS0: 'false',
        TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path: join(dir, 'acl.conf') }]),
        TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
        TRIBUTARY_AUTHORIZATION__CACHE__ENABLE: 'false',
      },
    });
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-pw' }) });
    bearer = `Bearer ${((await res.json()) as { token: string }).token}`;
  });
  after(async () => {
    await b?.stop();
  });

  it('client_attrs from mqtt.client_attrs_init: in client_connected, in message rules and in /api/v5/clients; a failing expression leaves its attribute unset', async () => {
    watch = await watcher();
    const dev = await client({ clientId: 'teamA-1', protocolVersion: 5, properties: { userProperties: { site: 'berlin' } } });
    const want = { group: 'teamA', site: 'berlin', shout: 'teamA!' };
    assert.deepEqual(JSON.parse((await waitForTopic(watch.inbox, 'ev/connected/teamA-1')).payload.toString()), want);
    await dev.client.publishAsync('attrs/x', 'hi', { qos: 1 });
    assert.deepEqual(JSON.parse((await waitForTopic(watch.inbox, 'ev/msg/teamA-1')).payload.toString()), want);
    const listed = await api('/clients?clientid=teamA-1');
    assert.deepEqual(listed.data[0].client_attrs, want);
    // A client without user properties: no site, and still no crash.
    await client({ clientId: 'solo', protocolVersion: 4 });
    assert.deepEqual(JSON.parse((await waitForTopic(watch.inbox, 'ev/connected/solo')).payload.toString()), { group: 'solo', shout: 'solo!' });
    await waitUntil(() => b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('client attribute not set') && l.attr === 'broken'), 'the failing expression logged');
  });

  it('${client_attrs.group} in an acl.conf topic: each client subscribes under its own group only', async () => {
    const a = await client({ clientId: 'teamA-2', protocolVersion: 5 });
    assert.equal((await a.client.subscribeAsync('teamA/t', { qos: 1 }))[0]!.qos, 1);
    const refused = await a.client.subscribeAsync('teamB/t', { qos: 1 }).then(
      (g) => g[0]!.qos,
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0],
    );
    assert.equal(refused, 0x87);
    const bee = await client({ clientId: 'teamB-1', protocolVersion: 5 });
    assert.equal((await bee.client.subscribeAsync('teamB/t', { qos: 1 }))[0]!.qos, 1);
  });

  it("from_username in message_delivered and message_acked, puback_props with the PUBACK's User-Property and Reason-String", async () => {
    watch = await watcher();
    const raw = await RawClient.connected(b.mqttPort, 'rawsub', 5);
    raws.push(raw);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'deliv/x', qos: 1 }] } as mp.ISubscribePacket);
    await raw.next('suback');
    const pub = await client({ clientId: 'pub-alice', username: 'alice', protocolVersion: 5 });
    await pub.client.publishAsync('deliv/x', 'm', { qos: 1 });
    const p = (await raw.next('publish')) as mp.IPublishPacket;
    raw.send({ cmd: 'puback', messageId: p.messageId, reasonCode: 0, properties: { reasonString: 'fine', userProperties: { k: 'v' } } } as mp.IPubackPacket);
    assert.equal((await waitForTopic(watch.inbox, 'ev/delivered/rawsub')).payload.toString(), 'alice');
    const acked = JSON.parse((await waitForTopic(watch.inbox, 'ev/acked/rawsub')).payload.toString());
    assert.equal(acked.from_username, 'alice');
    assert.deepEqual(acked.puback_props['User-Property'], { k: 'v' });
    assert.equal(acked.puback_props['Reason-String'], 'fine');
  });

  it('sub_props and unsub_props carry the User-Property of SUBSCRIBE and UNSUBSCRIBE', async () => {
    watch = await watcher();
    const c = await client({ clientId: 'props-1', protocolVersion: 5 });
    await c.client.subscribeAsync('props/x', { qos: 1, properties: { userProperties: { a: '1' }, subscriptionIdentifier: 7 } });
    const sub = JSON.parse((await waitForTopic(watch.inbox, 'ev/sub/props-1')).payload.toString());
    assert.deepEqual(sub['User-Property'], { a: '1' });
    assert.equal(sub['Subscription-Identifier'], 7);
    await c.client.unsubscribeAsync('props/x', { properties: { userProperties: { b: '2' } } });
    const unsub = JSON.parse((await waitForTopic(watch.inbox, 'ev/unsub/props-1')).payload.toString());
    assert.deepEqual(unsub['User-Property'], { b: '2' });
  });

  it("delivery_dropped no_local: a No Local subscriber's own message, with from_username", async () => {
    watch = await watcher();
    const c = await client({ clientId: 'nl-1', username: 'bob', protocolVersion: 5 });
    await c.client.subscribeAsync('nl/x', { qos: 1, nl: true });
    await c.client.publishAsync('nl/x', 'mine', { qos: 1 });
    assert.equal((await waitForTopic(watch.inbox, 'ev/dropped/no_local/nl-1')).payload.toString(), 'bob');
    assert.equal(c.inbox.messages.filter((m) => m.topic === 'nl/x').length, 0);
  });

  it('delivery_dropped qos0_msg: a QoS 0 message for a disconnected session with mqueue_store_qos0 = false', async () => {
    watch = await watcher();
    const c = await client({ clientId: 'q0-1', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 300 } });
    await c.client.subscribeAsync('q0/x', { qos: 1 });
    await c.client.endAsync();
    await waitUntil(async () => (await api('/clients?clientid=q0-1')).data[0]?.connected === false, 'q0-1 disconnected');
    const pub = await client({ clientId: 'pub-carol', username: 'carol', protocolVersion: 5 });
    await pub.client.publishAsync('q0/x', 'lost', { qos: 0 });
    assert.equal((await waitForTopic(watch.inbox, 'ev/dropped/qos0_msg/q0-1')).payload.toString(), 'carol');
  });

  it("message_dropped names the publisher: username, peerhost and client_attrs", async () => {
    watch = await watcher();
    const c = await client({ clientId: 'teamC-1', username: 'dave', protocolVersion: 5 });
    await c.client.publishAsync('nosub/x', 'nobody listens', { qos: 1 });
    assert.equal((await waitForTopic(watch.inbox, 'ev/mdropped/teamC-1')).payload.toString(), 'no_subscribers|dave|127.0.0.1|teamC');
  });
});
