import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end } from '../helpers/clients';
import { RawClient } from '../helpers/raw';
import { connectionsSettle } from '../helpers/util';

let b: BrokerProcess;
before(async () => {
  b = await startBroker({ env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__MAX_CONNECTIONS: '2' } });
});
after(() => b?.stop());

it('listeners.tcp.default.max_connections refuses connections beyond the limit of that listener only', async () => {
  const one = await RawClient.connected(b.mqttPort, 'lim-1');
  const two = await RawClient.connected(b.mqttPort, 'lim-2');
  const three = await RawClient.open(b.mqttPort);
  three.send({ cmd: 'connect', clientId: 'lim-3', protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 60 });
  // The documented refusal (docs/configuration.md, "Connections beyond this are refused"): the
  // socket is closed at once, before any CONNACK, whatever the protocol version.
  await three.waitClosed();
  assert.equal(three.packets.length, 0, 'no CONNACK beyond the limit');
  const five = await RawClient.open(b.mqttPort, 5);
  five.send({ cmd: 'connect', clientId: 'lim-5', protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60 });
  await five.waitClosed();
  assert.deepEqual(five.packets, [], 'no CONNACK (nor DISCONNECT) for a 5.0 client beyond the limit');
  // Another listener has its own count.
  const ws = await connect(`ws://127.0.0.1:${b.wsPort}/mqtt`, { clientId: 'lim-ws' });
  await end(ws);
  // A freed place can be taken again.
  one.destroy();
  await one.waitClosed();
  // Once the broker counted the close (the ws client's too), the next connection is accepted at the first try.
  await connectionsSettle(b, 1);
  const four = await RawClient.connected(b.mqttPort, 'lim-4');
  assert.equal((four.packets[0] as { returnCode?: number }).returnCode, 0, 'CONNACK 0 once a place was freed');
  four.destroy();
  two.destroy();
});
