// Bad CONNECTs: a 5.0 will or request flag with a protocol error gets CONNACK 0x82, and empty
// client identifiers are accepted or refused as each protocol version says. Setup and bystanders:
// test/helpers/protocol-errors.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { brokerWithBystanders, cid, gen, str16 } from '../helpers/protocol-errors';
import { RawClient } from '../helpers/raw';

const setup = brokerWithBystanders();

describe('protocol errors in a 5.0 will get CONNACK 0x82', () => {
  const will = (properties: Record<string, unknown>): mp.IConnectPacket['will'] => ({ topic: 'bystander/t', payload: Buffer.from('will: must not be sent'), qos: 0, retain: false, properties });
  const cases: [string, () => Buffer][] = [
    ['a will Response Topic with "+"', () => gen({ cmd: 'connect', clientId: cid('willrt'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ responseTopic: 'resp/+' }) }, 5)],
    ['a will Response Topic with "#"', () => gen({ cmd: 'connect', clientId: cid('willrt'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ responseTopic: '#' }) }, 5)],
    [
      'a will Payload Format Indicator of 2',
      () => {
        const b = gen({ cmd: 'connect', clientId: cid('willpfi'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, will: will({ payloadFormatIndicator: true }) }, 5);
        // Will Property Length 2, then Payload Format Indicator (0x01) = 1: make the value 2.
        const at = b.indexOf(Buffer.from([0x02, 0x01, 0x01]));
        assert.ok(at > 0);
        b[at + 2] = 2;
        return b;
      },
    ],
  ];
  for (const [name, bytes] of cases) {
    test(name, async () => {
      const c = await RawClient.open(setup.broker.mqttPort, 5);
      const received = setup.inbox.messages.length;
      c.sendBytes(bytes());
      const connack = (await c.next('connack')) as mp.IConnackPacket;
      assert.equal(connack.reasonCode, 0x82);
      await c.waitClosed(5000);
      await setup.bystandersWork();
      assert.ok(!setup.inbox.messages.slice(received).some((m) => m.payload.toString().startsWith('will')), 'the refused will was published');
    });
  }
});

describe('a 5.0 CONNECT whose one-byte request flag is neither 0 nor 1 gets CONNACK 0x82', () => {
  const flags: [string, keyof NonNullable<mp.IConnectPacket['properties']>, number][] = [
    ['Request Problem Information', 'requestProblemInformation', 0x17],
    ['Request Response Information', 'requestResponseInformation', 0x19],
  ];
  for (const [name, prop, id] of flags) {
    test(`${name} = 2`, async () => {
      const b = gen({ cmd: 'connect', clientId: cid('flag'), protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, properties: { [prop]: true } }, 5);
      // Property Length 2, then the identifier and the value 1: make the value 2.
      const at = b.indexOf(Buffer.from([0x02, id, 0x01]));
      assert.ok(at > 0);
      b[at + 2] = 2;
      const c = await RawClient.open(setup.broker.mqttPort, 5);
      c.sendBytes(b);
      const connack = (await c.next('connack')) as mp.IConnackPacket;
      assert.equal(connack.reasonCode, 0x82);
      await c.waitClosed(5000);
    });
    test(`${name} = 1 is accepted`, async () => {
      const c = await RawClient.connected(setup.broker.mqttPort, cid('flag'), 5, { properties: { [prop]: true } });
      assert.equal((c.packets[0] as mp.IConnackPacket).reasonCode, 0);
      c.destroy();
    });
  }
});

describe('empty client identifiers', () => {
  test('3.1.1 with clean session = 1 is accepted', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 4);
    c.send({ cmd: 'connect', clientId: '', protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 0);
    // The connection works: a ping is answered.
    c.send({ cmd: 'pingreq' });
    await c.next('pingresp');
    c.destroy();
    await setup.bystandersWork();
  });

  test('3.1.1 with clean session = 0 gets CONNACK 2 and is closed', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 4);
    // mqtt-packet refuses to generate this CONNECT, so it is built by hand (flags 0x00: clean session = 0).
    const body = Buffer.concat([str16('MQTT'), Buffer.from([4, 0x00, 0x00, 0x3c]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 2);
    assert.equal(connack.sessionPresent, false);
    await c.waitClosed(5000);
    await setup.bystandersWork();
  });

  test('5.0 with Clean Start = 0 gets CONNACK 0x85 (Client Identifier not valid) and is closed', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 5);
    // mqtt-packet refuses to generate this CONNECT: flags 0x00 (Clean Start = 0), keep-alive 60, no properties.
    const body = Buffer.concat([str16('MQTT'), Buffer.from([5, 0x00, 0x00, 0x3c, 0x00]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0x85);
    assert.equal(connack.sessionPresent, false);
    assert.equal(connack.properties?.assignedClientIdentifier, undefined);
    await c.waitClosed(5000);
    await setup.bystandersWork();
  });

  test('3.1 (MQIsdp, level 3) gets CONNACK 2 and is closed', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 4);
    // mqtt-packet refuses to generate an empty 3.1 client id, so the CONNECT is built by hand.
    const body = Buffer.concat([str16('MQIsdp'), Buffer.from([3, 0x02, 0x00, 0x3c]), str16('')]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 2);
    await c.waitClosed(5000);
    await setup.bystandersWork();
  });

  test('3.1 with a client id is accepted (control for the case above)', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 4);
    const body = Buffer.concat([str16('MQIsdp'), Buffer.from([3, 0x02, 0x00, 0x3c]), str16(cid('v31'))]);
    c.sendBytes(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.returnCode, 0);
    c.destroy();
  });

  test('5.0 gets an Assigned Client Identifier that then works as a client id', async () => {
    const c = await RawClient.open(setup.broker.mqttPort, 5);
    c.send({ cmd: 'connect', clientId: '', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const connack = (await c.next('connack')) as mp.IConnackPacket;
    assert.equal(connack.reasonCode, 0);
    const assigned = connack.properties?.assignedClientIdentifier;
    assert.ok(typeof assigned === 'string' && assigned.length > 0, 'no Assigned Client Identifier in CONNACK');
    // A second empty-id client gets a different identifier.
    const d = await RawClient.open(setup.broker.mqttPort, 5);
    d.send({ cmd: 'connect', clientId: '', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
    const other = ((await d.next('connack')) as mp.IConnackPacket).properties?.assignedClientIdentifier;
    assert.ok(other && other !== assigned, 'assigned identifiers must be unique');
    assert.equal(c.closed, false);
    c.destroy();
    d.destroy();
    await setup.bystandersWork();
  });
});
