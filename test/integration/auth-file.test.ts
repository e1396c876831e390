// The `file` authorization source: EMQX's acl.conf read at start, decisions seen by real
// mqtt.js clients (PUBACK/SUBACK reason codes, silent QoS 0 drops), no_match, deny_action,
// a 1,000-rule file, and a file with a syntax error stopping start-up.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import { aclRuleFile } from '../helpers/acl';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { closed } from '../helpers/clients';
import { clientTracker, Opened, uniqueTopic, waitForPayload } from '../helpers/util';

const RULES = `
%% Publishing under denied/ is refused; subscribing to it is fine.
{deny, all, publish, ["denied/#"]}.
{allow, all, subscribe, ["denied/#"]}.
{deny, all, subscribe, ["secret/#"]}.
{allow, {username, "alice"}, all, ["alice/#"]}.
{allow, all, all, ["open/#"]}.
`;

/** Every packet the client received, for reason codes mqtt.js only reports as errors. */
function received(o: Opened): Packet[] {
  const packets: Packet[] = [];
  o.client.on('packetreceive', (p) => packets.push(p));
  return packets;
}

/** Publishes at QoS 1 and returns the PUBACK's reason code (0 when none was sent, as 3.1.1 does). */
async function pubackCode(o: Opened, topic: string): Promise<number> {
  const packets = received(o);
  await o.client.publishAsync(topic, 'x', { qos: 1 }).catch(() => undefined);
  const ack = packets.find((p) => p.cmd === 'puback');
  assert.ok(ack, 'a PUBACK came back');
  return (ack as { reasonCode?: number }).reasonCode ?? 0;
}

/** Subscribes and returns the SUBACK's granted codes. */
async function subackCodes(o: Opened, filter: string): Promise<number[]> {
  const packets = received(o);
  await o.client.subscribeAsync(filter, { qos: 1 }).catch(() => undefined);
  const ack = packets.find((p) => p.cmd === 'suback') as { granted: number[] } | undefined;
  assert.ok(ack, 'a SUBACK came back');
  return ack.granted;
}

describe('file source: acl.conf with no_match = deny, 1,000 rules before the real ones', () => {
  const dir = tempDir();
  const path = join(dir, 'acl.conf');
  let b: BrokerProcess;
  const c = clientTracker(() => b.url);
  const client = (opts: IClientOptions = {}): Promise<Opened> => c.client(opts);

  before(async () => {
    writeFileSync(path, aclRuleFile(1000) + RULES);
    b = await startBroker({
      env: {
        TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path }]),
        TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
      },
    });
  });
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a denied QoS 1 publish gets PUBACK 0x87 (5.0) and reaches no subscriber; an allowed one is delivered', async () => {
    const sub = await client({ protocolVersion: 5 });
    await sub.client.subscribeAsync(['denied/#', 'open/#'], { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    assert.equal(await pubackCode(pub, 'denied/a'), 0x87);
    assert.equal(await pubackCode(pub, 'open/a'), 0);
    await waitForPayload(sub.inbox, 'x');
    assert.deepEqual(sub.inbox.messages.map((m) => m.topic), ['open/a']);
  });

  test('a denied QoS 0 publish from a 3.1.1 client is dropped silently: the connection stays, the subscriber never gets it', async () => {
    const sub = await client({ protocolVersion: 4 });
    await sub.client.subscribeAsync(['denied/#', 'open/#'], { qos: 0 });
    const pub = await client({ protocolVersion: 4 });
    const t = uniqueTopic('denied');
    pub.client.publish(t, 'must not arrive', { qos: 0 });
    // Sent after it on the same connection: once this one arrives, the denied one would have too.
    pub.client.publish(uniqueTopic('open'), 'marker', { qos: 0 });
    await waitForPayload(sub.inbox, 'marker');
    assert.deepEqual(sub.inbox.messages.map((m) => m.payload.toString()), ['marker']);
    assert.ok(pub.client.connected, 'deny_action ignore keeps the client connected');
  });

  test('a denied subscription gets SUBACK 0x87 (5.0) and 0x80 (3.1.1), and delivers nothing', async () => {
    const v5 = await client({ protocolVersion: 5 });
    assert.deepEqual(await subackCodes(v5, 'secret/#'), [0x87]);
    const v4 = await client({ protocolVersion: 4 });
    assert.deepEqual(await subackCodes(v4, 'secret/#'), [0x80]);
    assert.deepEqual(await subackCodes(v4, 'open/#'), [1]);
    const pub = await client({ protocolVersion: 5, username: 'alice' });
    // secret/ is not publishable either (no_match deny), so publish what the subscriber could see: nothing arrives from secret/.
    assert.equal(await pubackCode(pub, 'secret/x'), 0x87);
    assert.equal(v5.inbox.messages.length + v4.inbox.messages.length, 0);
  });

  test('no_match = deny: what no rule names is refused; a Who rule allows only its user', async () => {
    const alice = await client({ protocolVersion: 5, username: 'alice' });
    const bob = await client({ protocolVersion: 5, username: 'bob' });
    assert.equal(await pubackCode(alice, 'alice/x'), 0);
    assert.equal(await pubackCode(bob, 'alice/x'), 0x87);
    assert.equal(await pubackCode(alice, 'unlisted/x'), 0x87);
    assert.deepEqual(await subackCodes(bob, 'unlisted/#'), [0x87]);
  });

  test('the 1,000 generated rules apply: each user its own topics, QoS conditions, client-id regexes', async () => {
    const u998 = await client({ protocolVersion: 5, username: 'user-998' });
    const u997 = await client({ protocolVersion: 5, username: 'user-997' });
    assert.equal(await pubackCode(u998, 'bulk/998/a'), 0);
    assert.equal(await pubackCode(u997, 'bulk/998/a'), 0x87);
    // {publish, [{qos, [0, 1]}]}: QoS 2 is not covered, so no_match denies it (PUBREC 0x87).
    const packets = received(u998);
    await u998.client.publishAsync('bulk/998/b', 'q2', { qos: 2 }).catch(() => undefined);
    assert.equal((packets.find((p) => p.cmd === 'pubrec') as { reasonCode?: number }).reasonCode, 0x87);
    const dev = await client({ protocolVersion: 5, clientId: `dev-989-${process.pid}` });
    assert.deepEqual(await subackCodes(dev, 'bulk/989/+'), [1]);
    assert.deepEqual(await subackCodes(dev, 'bulk/988/+'), [0x87]);
  });
});

describe('file source: deny_action = disconnect, a relative path', () => {
  const dir = tempDir();
  let b: BrokerProcess;
  const c = clientTracker(() => b.url);

  before(async () => {
    writeFileSync(join(dir, 'acl.conf'), '{deny, all, publish, ["denied/#"]}.\n{allow, all}.\n');
    b = await startBroker({
      cwd: dir,
      env: {
        TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path: 'acl.conf' }]),
        TRIBUTARY_AUTHORIZATION__DENY_ACTION: 'disconnect',
      },
    });
  });
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the client is disconnected after its denied publish; allowed ones before it were delivered', async () => {
    const sub = await c.client({ protocolVersion: 5 });
    await sub.client.subscribeAsync('#', { qos: 1 });
    for (const version of [5, 4] as const) {
      const pub = await c.client({ protocolVersion: version });
      const gone = closed(pub.client as MqttClient);
      await pub.client.publishAsync('ok/1', `allowed v${version}`, { qos: 1 });
      await waitForPayload(sub.inbox, `allowed v${version}`);
      pub.client.publish('denied/1', 'no', { qos: 1 });
      await gone;
      assert.equal(pub.client.connected, false, `v${version}: disconnected`);
    }
    assert.ok(!sub.inbox.messages.some((m) => (m.packet as IPublishPacket).topic.startsWith('denied/')));
    assert.ok(sub.client.connected, 'the subscriber did nothing wrong and stays');
  });
});

test('a syntax error in acl.conf stops start-up, naming the file, the line and what was expected', async () => {
  const dir = tempDir();
  const path = join(dir, 'acl.conf');
  writeFileSync(path, '{allow, all, publish, ["a"]}.\n%% a comment\n{deny, all, subscribe ["b"]}.\n');
  try {
    await assert.rejects(startBroker({ env: { TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path }]) } }), (err: Error) => {
      assert.match(err.message, /broker exited with [1-9]/);
      // (The log is JSON: its quotes are escaped.)
      assert.ok(err.message.includes(`${path}:3:23: expected \\",\\" or \\"}\\", found \\"[\\"`), `names file, line and column:\n${err.message}`);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
