// Conformance details a client library hides: the exact bytes of forwarded properties, the
// Subscription Identifiers of one copy, the order of a publisher's PUBACK and its own copy, and
// the Server Keep Alive. Raw clients (test/helpers/raw.ts) against the real broker process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { generate } from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { RawClient } from '../helpers/raw';

let broker: BrokerProcess;
const open: RawClient[] = [];
let idn = 0;
const cid = (what: string): string => `cf-${what}-${++idn}`;

before(async () => {
  broker = await startBroker();
});

after(async () => {
  for (const c of open) c.destroy();
  await broker?.stop();
});

async function client(version: 4 | 5, extra: Partial<mp.IConnectPacket> = {}, port = broker.mqttPort): Promise<RawClient> {
  const c = await RawClient.connected(port, cid(`v${version}`), version, extra);
  open.push(c);
  return c;
}

async function subscribe(c: RawClient, subscriptions: mp.ISubscription[], subscriptionIdentifier?: number): Promise<void> {
  const messageId = ++idn;
  c.send({ cmd: 'subscribe', messageId, subscriptions, properties: subscriptionIdentifier === undefined ? undefined : { subscriptionIdentifier } });
  await c.next('suback', (p) => (p as mp.ISubackPacket).messageId === messageId);
}

function str16(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

const publishTo = (c: RawClient, topic: string): Promise<mp.IPublishPacket> => c.next('publish', (p) => (p as mp.IPublishPacket).topic === topic) as Promise<mp.IPublishPacket>;

describe('Payload Format Indicator is forwarded as the byte that was sent [MQTT-3.3.2-4]', () => {
  // The subscriber's QoS 0 copies carry no packet identifier and, with nothing else set, exactly
  // this property block after the topic: Property Length 2, identifier 0x01, the value.
  const onWire = (sub: RawClient, topic: string, value: number): boolean => Buffer.concat(sub.chunks).includes(Buffer.concat([str16(topic), Buffer.from([0x02, 0x01, value])]));

  test('in PUBLISH: 0 arrives as 0, 1 as 1, none as none', async () => {
    const sub = await client(5);
    await subscribe(sub, [{ topic: 'pfi/#', qos: 0 }]);
    const pub = await client(5);
    // mqtt-packet takes a boolean for a one-byte property and writes it as 0 or 1.
    for (const [topic, pfi] of [['pfi/zero', false], ['pfi/one', true], ['pfi/none', undefined]] as const) {
      pub.send({ cmd: 'publish', topic, payload: Buffer.from('text'), qos: 1, messageId: ++idn, retain: false, dup: false, properties: pfi === undefined ? undefined : { payloadFormatIndicator: pfi } });
    }
    const zero = await publishTo(sub, 'pfi/zero');
    const one = await publishTo(sub, 'pfi/one');
    const none = await publishTo(sub, 'pfi/none');
    assert.ok(onWire(sub, 'pfi/zero', 0), 'Payload Format Indicator 0 not forwarded as the byte 0');
    assert.ok(onWire(sub, 'pfi/one', 1), 'Payload Format Indicator 1 not forwarded as the byte 1');
    // The broker's parser (also the raw client's) keeps the byte too.
    assert.equal(zero.properties?.payloadFormatIndicator, 0);
    assert.equal(one.properties?.payloadFormatIndicator, 1);
    assert.equal(none.properties, undefined);
  });

  test('in a will: 0 arrives as 0, 1 as 1', async () => {
    const sub = await client(5);
    await subscribe(sub, [{ topic: 'pfiwill/#', qos: 0 }]);
    for (const [topic, pfi] of [['pfiwill/zero', false], ['pfiwill/one', true]] as const) {
      const w = await client(5, { will: { topic, payload: Buffer.from('gone'), qos: 0, retain: false, properties: { payloadFormatIndicator: pfi } } });
      w.destroy(); // no DISCONNECT: the will is published
      const got = await publishTo(sub, topic);
      assert.equal(got.properties?.payloadFormatIndicator, pfi ? 1 : 0);
      assert.ok(onWire(sub, topic, pfi ? 1 : 0), `will Payload Format Indicator ${pfi ? 1 : 0} not forwarded as that byte`);
    }
  });
});

describe('one copy for overlapping subscriptions carries each Subscription Identifier once [MQTT-3.3.4-4]', () => {
  test('two matching subscriptions with identifier 7 and one with 9: the copy carries 7 and 9', async () => {
    const c = await client(5);
    await subscribe(c, [{ topic: 'sid/+', qos: 1 }, { topic: 'sid/#', qos: 0 }], 7);
    await subscribe(c, [{ topic: 'sid/a', qos: 0 }], 9);
    const pub = await client(5);
    pub.send({ cmd: 'publish', topic: 'sid/a', payload: Buffer.from('x'), qos: 0, retain: false, dup: false });
    pub.send({ cmd: 'publish', topic: 'sid/b', payload: Buffer.from('y'), qos: 0, retain: false, dup: false });
    const ids = (p: mp.IPublishPacket): number[] => [p.properties?.subscriptionIdentifier ?? []].flat().sort((x, y) => x - y);
    assert.deepEqual(ids(await publishTo(c, 'sid/a')), [7, 9]);
    // Only the two subscriptions with identifier 7 match sid/b: a single identifier.
    const b = await publishTo(c, 'sid/b');
    assert.equal(b.properties?.subscriptionIdentifier, 7);
    assert.equal(c.packets.filter((p) => p.cmd === 'publish').length, 2, 'one copy per message');
  });
});

describe("a publisher's PUBACK/PUBREC comes before its own subscribed copy", () => {
  for (const v of [4, 5] as const) {
    for (const qos of [1, 2] as const) {
      const ack = qos === 1 ? 'puback' : 'pubrec';
      test(`QoS ${qos} (${v === 5 ? '5.0' : '3.1.1'}): ${ack.toUpperCase()}, then the own copy, then a QoS 0 message published right after it`, async () => {
        const topic = `own/${v}/${qos}`;
        const c = await client(v);
        await subscribe(c, [{ topic, qos }]);
        const start = c.packets.length;
        // In one write, so the broker routes both before the first is durable.
        const gen = (p: mp.IPublishPacket): Buffer => generate(p, { protocolVersion: v });
        c.sendBytes(
          Buffer.concat([
            gen({ cmd: 'publish', topic, payload: Buffer.from('first'), qos, messageId: 41, retain: false, dup: false }),
            gen({ cmd: 'publish', topic, payload: Buffer.from('second'), qos: 0, retain: false, dup: false }),
          ]),
        );
        await c.next('publish', (p) => (p as mp.IPublishPacket).payload.toString() === 'second');
        const seen = c.packets.slice(start).map((p) => (p.cmd === 'publish' ? `publish:${(p as mp.IPublishPacket).payload.toString()}` : `${p.cmd}:${(p as mp.IPubackPacket).messageId}`));
        assert.deepEqual(seen, [`${ack}:41`, 'publish:first', 'publish:second']);
      });
    }
  }
});

describe('mqtt.server_keepalive = 2', () => {
  let ka: BrokerProcess;
  before(async () => {
    ka = await startBroker({ env: { TRIBUTARY_MQTT__SERVER_KEEPALIVE: '2' } });
  });
  after(async () => {
    await ka?.stop();
  });

  test('a 5.0 client asking for 60 gets Server Keep Alive 2, and is held to it (DISCONNECT 0x8D); a 3.1.1 client keeps its 60', async () => {
    const t0 = Date.now();
    const v5 = await client(5, { keepalive: 60 }, ka.mqttPort);
    const v4 = await client(4, { keepalive: 60 }, ka.mqttPort);
    const connack = (await v5.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.properties?.serverKeepAlive, 2);
    // Silent for more than 1.5 × 2 s: dropped (the deadline ticker runs once a second).
    await v5.waitClosed(8000);
    const at = Date.now() - t0;
    assert.ok(at >= 3000, `dropped after ${at} ms, before 1.5 × the Server Keep Alive`);
    assert.equal(v5.disconnectReason(), 0x8d);
    assert.equal(v4.closed, false, 'a 3.1.1 client was held to the Server Keep Alive');
  });

  test('a 5.0 client asking for 2 gets no Server Keep Alive property', async () => {
    const c = await client(5, { keepalive: 2 }, ka.mqttPort);
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.serverKeepAlive, undefined);
  });
});
